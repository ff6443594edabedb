// Package receiver is the benchmark's remote-write endpoint: it accepts
// Remote-Write 1.0 and 2.0 requests, decodes every field of every request
// (see decoder), adds every sample to a Sum and answers as a receiver
// should (204; for RW2 with the written-count headers).
//
// Its control endpoints let the harness, in another process, read and
// reset the totals and wait for a count:
//
//	GET  /stats                      the totals, as JSON (Stats)
//	POST /reset                      zero them
//	GET  /wait?samples=N&timeout=D   answer (with /stats) once N samples arrived, or 408 after D
package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"

	"github.com/walship/walship/bench/shape"
)

// Stats are the receiver's totals since it started or was reset.
type Stats struct {
	Sum         shape.Sum `json:"sum"`
	Histograms  int64     `json:"histograms"`
	Exemplars   int64     `json:"exemplars"`
	Metadata    int64     `json:"metadata"`
	Requests    int64     `json:"requests"`
	RW2Requests int64     `json:"rw2_requests"`
	WireBytes   int64     `json:"wire_bytes"` // request bodies as sent (compressed)
	Refused     int64     `json:"refused"`    // malformed requests answered 400
}

// Receiver keeps the totals; Handler serves it.
type Receiver struct {
	mu      sync.Mutex
	stats   Stats
	changed chan struct{} // closed and replaced whenever stats change
	pool    sync.Pool     // *buffers
}

type buffers struct {
	body, raw []byte
	dec       decoder
}

// New returns a receiver with zero totals.
func New() *Receiver {
	return &Receiver{changed: make(chan struct{}), pool: sync.Pool{New: func() any { return &buffers{} }}}
}

// Stats returns the totals.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Reset zeroes the totals.
func (r *Receiver) Reset() { r.update(func(s *Stats) { *s = Stats{} }) }

func (r *Receiver) update(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Wait returns the totals once at least n samples arrived, or when
// timeout passed (ok false).
func (r *Receiver) Wait(n int64, timeout time.Duration) (Stats, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		s, changed := r.stats, r.changed
		r.mu.Unlock()
		if s.Sum.Samples >= n {
			return s, true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return s, false
		}
	}
}

// Handler serves remote write at / and the control endpoints.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", r.write)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, r.Stats()) })
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) { r.Reset() })
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, req *http.Request) {
		n, err := strconv.ParseInt(req.URL.Query().Get("samples"), 10, 64)
		if err != nil {
			http.Error(w, "samples: "+err.Error(), http.StatusBadRequest)
			return
		}
		timeout, err := time.ParseDuration(req.URL.Query().Get("timeout"))
		if err != nil {
			http.Error(w, "timeout: "+err.Error(), http.StatusBadRequest)
			return
		}
		s, ok := r.Wait(n, timeout)
		if !ok {
			w.WriteHeader(http.StatusRequestTimeout)
		}
		writeJSON(w, s)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (r *Receiver) write(w http.ResponseWriter, req *http.Request) {
	bufs := r.pool.Get().(*buffers)
	defer r.pool.Put(bufs)
	buf := bytes.NewBuffer(bufs.body[:0])
	if _, err := buf.ReadFrom(req.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	bufs.body = buf.Bytes()
	rw2 := strings.Contains(req.Header.Get("Content-Type"), "io.prometheus.write.v2.Request")
	c, err := bufs.decode(rw2)
	if err != nil {
		r.update(func(s *Stats) { s.Refused++ })
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.update(func(s *Stats) {
		s.Sum.Merge(c.sum)
		s.Histograms += c.histograms
		s.Exemplars += c.exemplars
		s.Metadata += c.metadata
		s.Requests++
		s.WireBytes += int64(len(bufs.body))
		if rw2 {
			s.RW2Requests++
		}
	})
	if rw2 {
		h := w.Header()
		h.Set("X-Prometheus-Remote-Write-Samples-Written", strconv.FormatInt(c.sum.Samples, 10))
		h.Set("X-Prometheus-Remote-Write-Histograms-Written", strconv.FormatInt(c.histograms, 10))
		h.Set("X-Prometheus-Remote-Write-Exemplars-Written", strconv.FormatInt(c.exemplars, 10))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *buffers) decode(rw2 bool) (counts, error) {
	size, err := snappy.DecodedLen(b.body)
	if err != nil {
		return counts{}, fmt.Errorf("snappy: %w", err)
	}
	if cap(b.raw) < size {
		b.raw = make([]byte, size)
	}
	raw, err := snappy.Decode(b.raw[:size], b.body)
	if err != nil {
		return counts{}, fmt.Errorf("snappy: %w", err)
	}
	if rw2 {
		return b.dec.rw2(raw)
	}
	return b.dec.rw1(raw)
}
