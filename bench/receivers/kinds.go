package receivers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// Prometheus is upstream's own server (v0.316.0, the bench module's
// tool: make bench-build-agent) with its remote-write receiver on, taking
// RW1 and RW2; read back through remote read, which returns raw samples.
func Prometheus(bin string) Receiver {
	return Receiver{
		Name: "prometheus", Version: "v0.316.0 (3.16)", Exact: true, Features: true,
		build: func(context.Context, string) error {
			return fmt.Errorf("%s is missing: run make bench-build-agent", bin)
		},
		argv: func(_, dir string, addr func(string) string) [][]string {
			cfg := filepath.Join(filepath.Dir(dir), "prometheus.yml")
			_ = os.WriteFile(cfg, []byte("global: {}\n"), 0o644)
			return [][]string{{bin, "--config.file=" + cfg, "--storage.tsdb.path=" + dir,
				"--web.listen-address=" + addr("http"), "--web.enable-remote-write-receiver", "--enable-feature=exemplar-storage",
				"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
				"--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request"}}
		},
		writePath: "/api/v1/write", readyPath: "/-/ready",
		read: remoteRead, taken: takenFrom("prometheus_tsdb_head_samples_appended_total"),
	}
}

// VictoriaMetrics is VictoriaMetrics single-node, built from the module
// proxy; read back through /api/v1/export, which returns raw samples.
func VictoriaMetrics() Receiver {
	const version = "v1.151.0"
	return Receiver{
		Name: "victoria-metrics", Version: version, Features: true, VMRange: true, NoExemplars: true, Metadata: true,
		build: func(ctx context.Context, bin string) error {
			return goInstall(ctx, "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics", version, bin)
		},
		argv: func(bin, dir string, addr func(string) string) [][]string {
			return [][]string{{bin, "-httpListenAddr=" + addr("http"), "-storageDataPath=" + dir, "-retentionPeriod=100y", "-loggerLevel=WARN"}}
		},
		writePath: "/api/v1/write", readyPath: "/health",
		read: vmExport, taken: takenFrom("vm_rows_inserted_total"),
	}
}

// remoteRead reads every series of [from, to] with Prometheus's remote
// read API.
func remoteRead(ctx context.Context, base string, from, to int64) ([]Series, error) {
	rr := prompb.ReadRequest{Queries: []*prompb.Query{{
		StartTimestampMs: from, EndTimestampMs: to,
		Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: "__name__", Value: ".+"}},
	}}}
	raw, err := rr.Marshal()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/read", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("remote read: %s: %s", resp.Status, body)
	}
	if body, err = snappy.Decode(nil, body); err != nil {
		return nil, fmt.Errorf("remote read: %w", err)
	}
	var rresp prompb.ReadResponse
	if err := rresp.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("remote read: %w", err)
	}
	var out []Series
	for _, res := range rresp.Results {
		for _, ts := range res.Timeseries {
			var b labels.ScratchBuilder
			for _, l := range ts.Labels {
				b.Add(l.Name, l.Value)
			}
			b.Sort()
			s := Series{Labels: b.Labels()}
			for _, smp := range ts.Samples {
				s.Samples = append(s.Samples, Sample{T: smp.Timestamp, V: smp.Value})
			}
			for _, h := range ts.Histograms {
				s.Samples = append(s.Samples, Sample{T: h.Timestamp, H: h.ToIntHistogram()})
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// vmExport reads every series of [from, to] with VictoriaMetrics'
// /api/v1/export (JSON lines). It flushes VictoriaMetrics' in-memory
// buffers first, so that what was just written is searchable.
func vmExport(ctx context.Context, base string, from, to int64) ([]Series, error) {
	if resp, err := http.Get(base + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}
	q := url.Values{"match[]": {`{__name__!=""}`}, "start": {fmt.Sprint(from / 1000)}, "end": {fmt.Sprint(to/1000 + 1)}}
	resp, err := get(ctx, base+"/api/v1/export?"+q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("export: %s: %s", resp.Status, body)
	}
	var out []Series
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		s := Series{Labels: labelsOf(line.Metric)}
		for i, t := range line.Timestamps {
			s.Samples = append(s.Samples, Sample{T: t, V: line.Values[i]})
		}
		out = append(out, s)
	}
	return out, sc.Err()
}
