package testkit

import (
	"context"
	"crypto/sha256"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Receiver is a remote-write endpoint that records what it accepts. It
// reads every request whole, decodes it, asks its Respond function (if
// any) how to answer, and, when the answer is to accept, records the
// request's series.
//
// The zero Receiver is an http.Handler ready to serve; NewReceiver also
// serves it on 127.0.0.1 for the test's duration. Its methods are safe for
// concurrent use.
type Receiver struct {
	// URL is where NewReceiver serves it, http://127.0.0.1:port.
	URL string

	t       testing.TB    // told of a body to accept that does not decode; nil: nobody
	closing chan struct{} // closed when the test ends: waiting answers go

	mu       sync.Mutex
	respond  func(*Request) Reply
	arrivals int
	log      []*Exchange
	inFlight int
	most     int // the most requests in flight at once
	accepted Counts
	samples  map[string][]prompb.Sample               // by series
	types    map[string][]writev2.Metadata_MetricType // by series, one per sample
	seen     map[string]int                           // "series@timestamp" → times accepted
	metadata map[string]prompb.MetricMetadata         // RW1, by metric family
}

// Exchange is one request a receiver got and how it answered.
type Exchange struct {
	N         int         // arrival number, from 1
	Header    http.Header // the request's headers
	Hash      [32]byte    // SHA-256 of the body as received
	Arrived   time.Time
	Answered  time.Time // zero while not answered
	Status    int       // the status answered; 0 when hung up on or abandoned
	Accepted  bool      // its series were recorded
	Abandoned bool      // the client gave up while the answer waited
}

// Counts are what a receiver accepted: requests, and the samples,
// histograms and exemplars in them (repeats included).
type Counts struct {
	Requests, Samples, Histograms, Exemplars int
}

// NewReceiver serves a new Receiver on 127.0.0.1 until the test ends, and
// reports to t every body it is to accept that does not decode.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{t: t, closing: make(chan struct{})}
	srv := httptest.NewServer(r)
	r.URL = srv.URL
	t.Cleanup(func() {
		close(r.closing)
		srv.Close()
	})
	return r
}

// Respond makes f choose the answer to every request from now on; nil
// accepts them all. f is called for one request at a time, with the
// receiver's lock held: it may keep state without a lock of its own, and
// must neither block nor call the receiver.
func (r *Receiver) Respond(f func(*Request) Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = f
}

// ServeHTTP reads, answers and records one request.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	arrived := time.Now()
	body, err := io.ReadAll(hr.Body) // whole: only then does the server notice a client leave
	req := &Request{HTTP: hr, RW2: isRW2(hr.Header.Get("Content-Type")), Err: err}
	var metadata []prompb.MetricMetadata
	if err == nil {
		req.Series, metadata, req.Err = decode(body, req.RW2)
	}
	ex := &Exchange{Header: hr.Header.Clone(), Hash: sha256.Sum256(body), Arrived: arrived}
	reply := r.arrive(req, ex) // in flight until answer or take ends it

	if !r.wait(hr.Context(), reply) {
		r.answer(ex, 0, true)
		return
	}
	switch {
	case reply.HangUp:
		conn, _, err := http.NewResponseController(w).Hijack()
		r.answer(ex, 0, false)
		if err != nil {
			r.errorf("testkit: request %d: hanging up: %v", ex.N, err)
			return
		}
		_ = conn.Close()
		return
	case reply.Status != 0:
		setHeader(w, reply.Header)
		r.answer(ex, reply.Status, false)
		w.WriteHeader(reply.Status)
		return
	case req.Err != nil:
		r.answer(ex, http.StatusBadRequest, false)
		r.errorf("testkit: request %d to accept does not decode: %v", ex.N, req.Err)
		http.Error(w, req.Err.Error(), http.StatusBadRequest)
		return
	}
	written := r.take(ex, req.Series, metadata)
	if req.RW2 {
		w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(written.Samples))
		w.Header().Set("X-Prometheus-Remote-Write-Histograms-Written", strconv.Itoa(written.Histograms))
		w.Header().Set("X-Prometheus-Remote-Write-Exemplars-Written", strconv.Itoa(written.Exemplars))
	}
	setHeader(w, reply.Header)
	w.WriteHeader(http.StatusNoContent)
}

// arrive numbers and logs a request and asks how to answer it.
func (r *Receiver) arrive(req *Request, ex *Exchange) Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.arrivals++
	req.N, ex.N = r.arrivals, r.arrivals
	r.log = append(r.log, ex)
	r.inFlight++
	r.most = max(r.most, r.inFlight)
	if r.respond == nil {
		return Reply{}
	}
	return r.respond(req)
}

// wait waits as reply asks; false means the client gave up meanwhile, or
// before: a request whose sender cancelled it is not taken.
func (r *Receiver) wait(ctx context.Context, reply Reply) bool {
	if ctx.Err() != nil {
		return false
	}
	if reply.Delay > 0 {
		timer := time.NewTimer(reply.Delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return false
		case <-r.closing:
		}
	}
	if reply.Wait != nil {
		select {
		case <-reply.Wait:
		case <-ctx.Done():
			return false
		case <-r.closing:
		}
	}
	return true
}

// answer notes in ex how the request ended. It ends before the client
// can see the answer, so that a client's next request never finds this
// one still in flight.
func (r *Receiver) answer(ex *Exchange, status int, abandoned bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ex.Answered, ex.Status, ex.Abandoned = time.Now(), status, abandoned
	r.inFlight--
}

// take records an accepted request and returns what it held.
func (r *Receiver) take(ex *Exchange, series []Series, metadata []prompb.MetricMetadata) Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.samples == nil {
		r.samples, r.types, r.seen = map[string][]prompb.Sample{}, map[string][]writev2.Metadata_MetricType{}, map[string]int{}
		r.metadata = map[string]prompb.MetricMetadata{}
	}
	var got Counts
	for _, s := range series {
		key := s.Labels.String()
		r.samples[key] = append(r.samples[key], s.Samples...)
		for _, smp := range s.Samples {
			r.types[key] = append(r.types[key], s.Type)
			r.seen[key+"@"+strconv.FormatInt(smp.Timestamp, 10)]++
		}
		got.Samples += len(s.Samples)
		got.Histograms += s.Histograms
		got.Exemplars += s.Exemplars
	}
	for _, md := range metadata {
		r.metadata[md.MetricFamilyName] = md
	}
	r.accepted.Requests++
	r.accepted.Samples += got.Samples
	r.accepted.Histograms += got.Histograms
	r.accepted.Exemplars += got.Exemplars
	ex.Answered, ex.Status, ex.Accepted = time.Now(), http.StatusNoContent, true
	r.inFlight-- // as answer does
	return got
}

func (r *Receiver) errorf(format string, args ...any) {
	if r.t != nil {
		r.t.Errorf(format, args...)
	}
}

func setHeader(w http.ResponseWriter, h http.Header) {
	for k, vs := range h {
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
}

// Accepted returns what the receiver accepted so far.
func (r *Receiver) Accepted() Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

// Samples returns a copy of the samples accepted, by series (its labels'
// String), in arrival order, repeats included.
func (r *Receiver) Samples() map[string][]prompb.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneAll(r.samples)
}

// Types returns, by series, the RW2 metadata type each sample of Samples
// came with (unspecified over RW1).
func (r *Receiver) Types() map[string][]writev2.Metadata_MetricType {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneAll(r.types)
}

// Seen returns how many times each sample was accepted, keyed
// "series@timestamp".
func (r *Receiver) Seen() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.seen)
}

// Distinct returns how many distinct samples (series and timestamp) were
// accepted.
func (r *Receiver) Distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// Metadata returns the RW1 metadata accepted, the latest by metric family.
func (r *Receiver) Metadata() map[string]prompb.MetricMetadata {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.metadata)
}

// Requests returns every request received, answered or not, in arrival
// order.
func (r *Receiver) Requests() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Exchange, len(r.log))
	for i, ex := range r.log {
		out[i] = *ex
	}
	return out
}

// MostInFlight returns the most requests that were in flight (arrived and
// not answered) at once.
func (r *Receiver) MostInFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.most
}

// Reset forgets everything recorded so far, as if the receiver had just
// started, but for the arrival numbers, which go on.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log, r.most, r.accepted = nil, r.inFlight, Counts{}
	r.samples, r.types, r.seen, r.metadata = nil, nil, nil, nil
}

// cloneAll copies m and its slices.
func cloneAll[V any](m map[string][]V) map[string][]V {
	out := make(map[string][]V, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}
