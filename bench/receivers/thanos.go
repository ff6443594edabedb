package receivers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// thanosToolchain is the Go that builds Thanos: its go.mod asks for Go
// 1.26.10, newer than this machine's 1.26.8.
const thanosToolchain = "go1.27.3"

// thanosLabels are the labels Thanos Receive adds to every series it
// holds: its external label (--label, which it requires) and the tenant's.
var thanosLabels = []string{"receive_replica", "tenant_id"}

// Thanos is Thanos Receive, a single node ingesting what it is sent (no
// hashring), built from the module proxy in a module of its own (its
// go.mod has replace directives). Receive serves only the StoreAPI, over
// gRPC; a Thanos Query beside it, with Receive as its only endpoint,
// serves the Prometheus query API that everything is read back through.
// Receive cuts its head into a block when it stops and when it starts,
// and then refuses (409, out of bounds) any sample older than the newest
// it held: a restart under a backlog sent by several shards loses the
// samples not yet sent of the older scrapes, unless an out-of-order
// window takes them (--tsdb.out-of-order.time-window, here 30m; the
// too-old case's hour-older samples stay refused).
func Thanos() Receiver {
	const version = "v0.42.5"
	return Receiver{
		Name: "thanos-receive", Version: version, Exact: true, Features: true,
		OptIn: "left out of make e2e-receivers, so out of CI: a cold build takes 6 to 7 min (Go 1.27.3 and about 270 modules " +
			"from the module proxy, then 2 cores compiling), its cases 3 more; run make e2e-receivers-thanos",
		build: func(ctx context.Context, bin string) error {
			// The tags of Thanos's own release build (.promu.yml): its
			// labels code takes Prometheus's labels for slices, which
			// they are not by default (built without, receive crashes
			// at its first gRPC answer).
			return goBuildInModule(ctx, "github.com/thanos-io/thanos", version, "cmd/thanos", thanosToolchain, bin,
				"-tags=netgo,slicelabels", "-ldflags=-X github.com/prometheus/common/version.Version="+strings.TrimPrefix(version, "v"))
		},
		argv: func(bin, dir string, addr func(string) string) [][]string {
			return [][]string{
				{bin, "receive", "--tsdb.path=" + dir, "--tsdb.retention=100y", `--label=receive_replica="0"`,
					"--tsdb.max-exemplars=100000", "--tsdb.out-of-order.time-window=30m", "--remote-write.address=" + addr("write"), "--grpc-address=" + addr("grpc"),
					"--http-address=" + addr("receive"), "--receive.capnproto-address=" + addr("capnproto"), "--log.level=warn"},
				{bin, "query", "--http-address=" + addr("http"), "--grpc-address=" + addr("query-grpc"),
					"--endpoint=" + addr("grpc"), "--log.level=warn"},
			}
		},
		writeAt: "write", metricsAt: "receive", writePath: "/api/v1/receive",
		ready: thanosReady, read: thanosRead,
		taken: takenFrom("prometheus_tsdb_head_samples_appended_total"),
	}
}

// thanosRead reads through Query once Query knows that Receive holds
// samples older than to: Query asks a store for a span only when the time
// range the store announced (its oldest sample on) overlaps it, and it
// learns that range at its checks, every 5 s. Samples sent to a Receive
// that held none are not read back until then; it waits at most 10 s.
func thanosRead(ctx context.Context, base string, from, to int64) ([]Series, error) {
	poll(ctx, func() bool {
		ok := false
		thanosStores(ctx, base, func(s thanosStore) { ok = ok || s.MinTime <= to })
		return ok
	}, 10*time.Second)
	return queryRead(thanosLabels...)(ctx, base, from, to)
}

// thanosStore is what Query's /api/v1/stores says of one store.
type thanosStore struct {
	Name             string
	LastCheck        time.Time
	LastError        json.RawMessage
	MinTime, MaxTime int64
}

// thanosStores calls f with each store Query's /api/v1/stores lists.
func thanosStores(ctx context.Context, base string, f func(thanosStore)) {
	resp, err := get(ctx, base+"/api/v1/stores")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var body struct{ Data map[string][]thanosStore }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return
	}
	for _, stores := range body.Data {
		for _, s := range stores {
			f(s)
		}
	}
}

// thanosReady says whether Receive and Query are ready, and Query has
// found Receive healthy since since: after a restart of Receive, Query
// checks its endpoints every 5 s, and reads before then could miss it.
func thanosReady(ctx context.Context, in *instance, since time.Time) bool {
	if status(ctx, "http://"+in.addr("receive")+"/-/ready") != 200 || status(ctx, in.base+"/-/ready") != 200 {
		return false
	}
	ok := false
	thanosStores(ctx, in.base, func(s thanosStore) {
		healthy := len(s.LastError) == 0 || string(s.LastError) == "null"
		ok = ok || s.Name == in.addr("grpc") && healthy && s.LastCheck.After(since)
	})
	return ok
}

// queryRead returns a read function that reads every series of (from,
// to] through a Prometheus query API: an instant query at to of a range
// selector over the whole span returns every raw sample (not
// deduplicated: dedup=false; not downsampled: max_source_resolution=0s;
// every store answering: partial_response=false). It removes the labels
// strip, which the receiver adds to every series.
func queryRead(strip ...string) func(ctx context.Context, base string, from, to int64) ([]Series, error) {
	return func(ctx context.Context, base string, from, to int64) ([]Series, error) {
		q := url.Values{
			"query": {fmt.Sprintf(`{__name__=~".+"}[%dms]`, to-from)}, "time": {fmt.Sprintf("%d.%03d", to/1000, to%1000)},
			"dedup": {"false"}, "max_source_resolution": {"0s"}, "partial_response": {"false"},
		}
		resp, err := get(ctx, base+"/api/v1/query?"+q.Encode())
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		var body struct {
			Status, Error string
			Warnings      []string
			Data          struct {
				ResultType string
				Result     []struct {
					Metric     map[string]string
					Values     [][2]any
					Histograms [][2]any
				}
			}
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			return nil, fmt.Errorf("query: %s: %w", resp.Status, err)
		}
		if body.Status != "success" || len(body.Warnings) > 0 || body.Data.ResultType != "matrix" {
			return nil, fmt.Errorf("query: %s: %s %v (%q)", resp.Status, body.Error, body.Warnings, body.Data.ResultType)
		}
		var out []Series
		for _, r := range body.Data.Result {
			for _, n := range strip {
				delete(r.Metric, n)
			}
			s := Series{Labels: labelsOf(r.Metric)}
			for _, v := range r.Values {
				t, ok1 := v[0].(float64)
				str, ok2 := v[1].(string)
				f, err := strconv.ParseFloat(str, 64)
				if !ok1 || !ok2 || err != nil {
					return nil, fmt.Errorf("query: a sample %v", v)
				}
				s.Samples = append(s.Samples, Sample{T: int64(math.Round(t * 1000)), V: f})
			}
			for _, h := range r.Histograms {
				t, ok := h[0].(float64)
				if !ok {
					return nil, fmt.Errorf("query: a histogram %v", h)
				}
				s.Samples = append(s.Samples, Sample{T: int64(math.Round(t * 1000)), J: h[1]})
			}
			out = append(out, s)
		}
		return out, nil
	}
}

// labelsOf returns m as labels.
func labelsOf(m map[string]string) labels.Labels {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b labels.ScratchBuilder
	for _, n := range names {
		b.Add(n, m[n])
	}
	return b.Labels()
}
