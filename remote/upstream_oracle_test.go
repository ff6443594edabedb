package remote

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	promstorage "github.com/prometheus/prometheus/storage"
	upstream "github.com/prometheus/prometheus/storage/remote"
)

// upstreamReceiver is upstream Prometheus' own remote-write handler in front of a
// memory that keeps what it commits: the oracle for what a Prometheus
// receiver takes. newUpstreamReceiver serves it on 127.0.0.1; it is an
// http.Handler too, for a test that answers some requests itself.
type upstreamReceiver struct {
	// URL is where newUpstreamReceiver serves it, http://127.0.0.1:port.
	URL string

	handler http.Handler
	mem     *memAppendable
}

// newUpstreamReceiver serves upstream's handler, taking the protobuf messages
// accepted (answering 415 to others), on 127.0.0.1 until the test ends.
func newUpstreamReceiver(t testing.TB, accepted ...remoteapi.WriteMessageType) *upstreamReceiver {
	mem := newMemAppendable()
	u := &upstreamReceiver{mem: mem, handler: upstream.NewWriteHandler(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), mem,
		remoteapi.MessageTypes(accepted), false, false)}
	srv := httptest.NewServer(u)
	u.URL = srv.URL
	t.Cleanup(srv.Close)
	return u
}

// ServeHTTP hands the request to upstream's handler.
func (u *upstreamReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.handler.ServeHTTP(w, r)
}

// Snapshot returns copies of what was committed so far, by series (its
// labels' String): float samples, the number of histograms, and exemplars.
func (u *upstreamReceiver) Snapshot() (map[string][]prompb.Sample, map[string]int, map[string][]exemplar.Exemplar) {
	return u.mem.snapshot()
}

// memAppendable is a minimal in-memory promstorage.AppendableV2 for upstream's
// remote-write handler: it keeps committed float samples, histograms and
// exemplars per series.
type memAppendable struct {
	mu         sync.Mutex
	samples    map[string][]prompb.Sample
	histograms map[string]int
	exemplars  map[string][]exemplar.Exemplar
}

func newMemAppendable() *memAppendable {
	return &memAppendable{
		samples:    map[string][]prompb.Sample{},
		histograms: map[string]int{},
		exemplars:  map[string][]exemplar.Exemplar{},
	}
}

func (m *memAppendable) AppenderV2(context.Context) promstorage.AppenderV2 {
	return &memAppender{m: m}
}

type pendingSample struct {
	series string
	t      int64
	v      float64
	hist   bool
}

type memAppender struct {
	m         *memAppendable
	samples   []pendingSample
	exemplars map[string][]exemplar.Exemplar
}

func (a *memAppender) Append(_ promstorage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts promstorage.AppendV2Options) (promstorage.SeriesRef, error) {
	a.samples = append(a.samples, pendingSample{series: ls.String(), t: t, v: v, hist: h != nil || fh != nil})
	if len(opts.Exemplars) > 0 {
		if a.exemplars == nil {
			a.exemplars = map[string][]exemplar.Exemplar{}
		}
		a.exemplars[ls.String()] = append(a.exemplars[ls.String()], opts.Exemplars...)
	}
	return promstorage.SeriesRef(ls.Hash()), nil
}

func (a *memAppender) AppendExemplars(_ promstorage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (promstorage.SeriesRef, error) {
	if a.exemplars == nil {
		a.exemplars = map[string][]exemplar.Exemplar{}
	}
	a.exemplars[ls.String()] = append(a.exemplars[ls.String()], es...)
	return promstorage.SeriesRef(ls.Hash()), nil
}

func (a *memAppender) Commit() error {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	for _, s := range a.samples {
		if s.hist {
			a.m.histograms[s.series]++
			continue
		}
		a.m.samples[s.series] = append(a.m.samples[s.series], prompb.Sample{Timestamp: s.t, Value: s.v})
	}
	for k, es := range a.exemplars {
		a.m.exemplars[k] = append(a.m.exemplars[k], es...)
	}
	a.samples, a.exemplars = nil, nil
	return nil
}

func (a *memAppender) Rollback() error {
	a.samples, a.exemplars = nil, nil
	return nil
}

// snapshot returns copies of what was appended so far.
func (m *memAppendable) snapshot() (map[string][]prompb.Sample, map[string]int, map[string][]exemplar.Exemplar) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneValues(m.samples), maps.Clone(m.histograms), cloneValues(m.exemplars)
}

// cloneValues copies m and each of its slices.
func cloneValues[V any](m map[string][]V) map[string][]V {
	out := make(map[string][]V, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}
