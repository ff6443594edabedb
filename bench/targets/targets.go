// Package targets serves a shape's series as scrape targets, the way
// kubelets' cAdvisor endpoints serve theirs, for the agent senders: target
// t is /metrics/t, with the shape's series of that target (1500), each
// with its full label set (job and instance included: the agents scrape
// with honor_labels) and an explicit timestamp. Its n-th scrape serves the
// shape's scrape number n, timestamped from a base the harness sets
// (shape.TimestampFrom; BaseTime until it does), so an agent that scrapes
// every target Scrapes times writes exactly the samples of
// shape.SumFrom(base) (with BaseTime, those of the shape's WAL). Past the
// last scrape a target serves no samples: parsing it costs nothing, and
// the stale markers an agent then writes for the target's series carry
// the time of the scrape, older than the samples (timestamped from a
// minute ahead), so they are refused as out of order and never shipped.
// An agent that ships slower than it scrapes thus pays for shipping, not
// for scraping the same series again.
//
//	GET  /metrics/{target}   the target's next scrape, as text exposition
//	POST /reset?base=MS      every target starts again at scrape 0, the first at MS (Unix ms)
package targets

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/walship/walship/bench/shape"
)

// Server serves one shape's targets.
type Server struct {
	shape shape.Shape

	prefixes [][]byte // per target, each series' `name{labels} `, a line each

	mu     sync.Mutex
	base   int64 // the first scrape's timestamp
	served []int // scrapes served, per target
}

// New returns a server of s's targets, each at scrape 0. It renders every
// series' name and labels first (about 300 bytes a series), so that a
// scrape only formats values: a target slow to answer would time scrapes
// out, and a scrape that failed is a scrape number the agent never
// stores.
func New(s shape.Shape) *Server {
	srv := &Server{shape: s, base: shape.BaseTime, served: make([]int, s.Targets()), prefixes: make([][]byte, s.Targets())}
	for t := range srv.prefixes {
		srv.prefixes[t] = render(s, t)
	}
	return srv
}

// ScrapeJob is the scrape_configs entry of an agent scraping every one of
// n targets served at addr (/metrics/N), keeping the labels and
// timestamps they expose (honor_labels), as YAML at the indentation of a
// scrape_configs list item, relabel_configs last (callers may append
// rules).
func ScrapeJob(addr string, n int) string {
	var b strings.Builder
	b.WriteString("  - job_name: kubelet\n    honor_labels: true\n    static_configs:\n      - targets: [")
	for t := range n {
		if t > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "'%d'", t)
	}
	b.WriteString("]\n    relabel_configs:\n")
	b.WriteString("      - {source_labels: [__address__], target_label: instance}\n")
	b.WriteString("      - {source_labels: [__address__], target_label: __metrics_path__, replacement: /metrics/$1}\n")
	fmt.Fprintf(&b, "      - {target_label: __address__, replacement: '%s'}\n", addr)
	return b.String()
}

// Done reports whether every target served all of the shape's scrapes.
func (s *Server) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.served {
		if n < s.shape.Scrapes {
			return false
		}
	}
	return true
}

// Handler serves the targets and /reset.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics/{target}", s.scrape)
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, req *http.Request) {
		base := shape.BaseTime
		if q := req.URL.Query().Get("base"); q != "" {
			var err error
			if base, err = strconv.ParseInt(q, 10, 64); err != nil {
				http.Error(w, "base: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		s.mu.Lock()
		s.base = base
		clear(s.served)
		s.mu.Unlock()
	})
	return mux
}

func (s *Server) scrape(w http.ResponseWriter, req *http.Request) {
	t, err := strconv.Atoi(req.PathValue("target"))
	if err != nil || t < 0 || t >= len(s.served) {
		http.NotFound(w, req)
		return
	}
	s.mu.Lock()
	n := s.served[t]
	s.served[t]++
	base := s.base
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	if n >= s.shape.Scrapes {
		return // past the last scrape: nothing
	}
	prefixes := s.prefixes[t]

	first := t * shape.SeriesPerTarget
	ts := strconv.AppendInt(nil, shape.TimestampFrom(base, t, n), 10)
	out := make([]byte, 0, len(prefixes)+(shape.SeriesPerTarget)*(len(ts)+24))
	for i, line := 0, prefixes; len(line) > 0; i++ {
		end := bytes.IndexByte(line, '\n')
		out = append(out, line[:end]...)
		out = strconv.AppendFloat(out, shape.Value(first+i, n), 'g', -1, 64)
		out = append(out, ' ')
		out = append(out, ts...)
		out = append(out, '\n')
		line = line[end+1:]
	}
	w.Write(out)
}

// render writes target t of s's series as `name{label="value",...} `, one
// a line.
func render(s shape.Shape, t int) []byte {
	var (
		b   []byte
		sb  labels.ScratchBuilder
		end = min((t+1)*shape.SeriesPerTarget, s.Series)
	)
	for i := t * shape.SeriesPerTarget; i < end; i++ {
		ls := shape.Labels(&sb, i)
		b = append(b, ls.Get(labels.MetricName)...)
		b = append(b, '{')
		sep := false
		ls.Range(func(l labels.Label) {
			if l.Name == labels.MetricName {
				return
			}
			if sep {
				b = append(b, ',')
			}
			sep = true
			b = append(b, l.Name...)
			b = append(b, '=')
			b = strconv.AppendQuote(b, l.Value)
		})
		b = append(b, "} \n"...)
	}
	return b
}
