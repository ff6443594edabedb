package reliability

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// This file is the receiver every scenario ships to: it records every
// sample it accepts (series, timestamp), how often it arrived and when
// first, and answers as its current Mode says.

// Mode is how the recorder answers.
type Mode int32

const (
	Healthy  Mode = iota // records and answers 204
	Down                 // answers 503 without reading the request
	Flapping             // a random fault (see flap) for about half the requests
)

// sampleKey is one sample: its series (an id of the recorder's or the
// accounting's) and timestamp.
type sampleKey struct {
	series uint32
	t      int64
}

// arrival is what the recorder knows of a sample.
type arrival struct {
	times uint16 // how often it was accepted
	first int32  // when first, in ms since the recorder started
}

// Recorder is a remote-write receiver (RW1 and RW2) on 127.0.0.1 that
// records every sample it accepts. Safe for concurrent use.
type Recorder struct {
	srv   *httptest.Server
	begin time.Time
	mode  atomic.Int32

	mu       sync.Mutex
	ids      map[string]uint32 // series labels (labels.String) -> id
	seen     map[sampleKey]arrival
	requests int
	faults   map[string]int // answers other than 204, by kind
	cut      int64          // see newestBefore
	newest   int32          // when a sample older than cut first arrived last, ms since begin

	rng *rand.Rand // flap's; under mu
}

// NewRecorder starts a recorder.
func NewRecorder() *Recorder {
	r := &Recorder{
		begin:  time.Now(),
		ids:    map[string]uint32{},
		seen:   map[sampleKey]arrival{},
		faults: map[string]int{},
		rng:    rand.New(rand.NewPCG(1, 2)),
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// URL is where to send.
func (r *Recorder) URL() string { return r.srv.URL + "/api/v1/write" }

// Close stops the server.
func (r *Recorder) Close() {
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// SetMode changes how the recorder answers from the next request on.
func (r *Recorder) SetMode(m Mode) { r.mode.Store(int32(m)) }

func (r *Recorder) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	r.mu.Unlock()
	switch Mode(r.mode.Load()) {
	case Down:
		r.count("503")
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	case Flapping:
		if r.flap(w, req) {
			return
		}
	}
	n, err := r.record(req)
	if err != nil {
		r.count("400")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	written(w, req, n)
	w.WriteHeader(http.StatusNoContent)
}

func (r *Recorder) count(kind string) {
	r.mu.Lock()
	r.faults[kind]++
	r.mu.Unlock()
}

// rw2 is the Content-Type of an RW2 request.
const rw2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

// written sets the headers an RW2 receiver answers with (the recorder
// takes every sample: what the sender counted, it takes as written).
func written(w http.ResponseWriter, req *http.Request, n int) {
	if req.Header.Get("Content-Type") != rw2 {
		return
	}
	w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(n))
	w.Header().Set("X-Prometheus-Remote-Write-Histograms-Written", "0")
	w.Header().Set("X-Prometheus-Remote-Write-Exemplars-Written", "0")
}

// record decodes the request and records its samples; it returns how
// many it held.
func (r *Recorder) record(req *http.Request) (int, error) {
	raw, err := requestBody(req)
	if err != nil {
		return 0, err
	}
	series, err := decode(raw, req.Header.Get("Content-Type") == rw2)
	if err != nil {
		return 0, err
	}
	now := int32(time.Since(r.begin).Milliseconds())
	n := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range series {
		id := r.id(s.labels)
		for _, t := range s.timestamps {
			r.add(sampleKey{id, t}, now)
		}
		n += len(s.timestamps)
	}
	return n, nil
}

// requestBody reads and decompresses a remote-write request's body.
func requestBody(req *http.Request) ([]byte, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	return snappy.Decode(nil, body)
}

// requestSeries is a series of a request: its labels (labels.String) and
// its samples' timestamps.
type requestSeries struct {
	labels     string
	timestamps []int64
}

// decode decodes an RW1 or RW2 request.
func decode(raw []byte, isRW2 bool) ([]requestSeries, error) {
	var out []requestSeries
	var b labels.ScratchBuilder
	if isRW2 {
		var wr writev2.Request
		if err := proto.Unmarshal(raw, &wr); err != nil {
			return nil, err
		}
		for _, ts := range wr.Timeseries {
			ls, err := ts.ToLabels(&b, wr.Symbols)
			if err != nil {
				return nil, err
			}
			s := requestSeries{labels: ls.String()}
			for _, x := range ts.Samples {
				s.timestamps = append(s.timestamps, x.Timestamp)
			}
			out = append(out, s)
		}
		return out, nil
	}
	var wr prompb.WriteRequest
	if err := proto.Unmarshal(raw, &wr); err != nil {
		return nil, err
	}
	for _, ts := range wr.Timeseries {
		b.Reset()
		for _, l := range ts.Labels {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		s := requestSeries{labels: b.Labels().String()}
		for _, x := range ts.Samples {
			s.timestamps = append(s.timestamps, x.Timestamp)
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Recorder) id(series string) uint32 {
	id, ok := r.ids[series]
	if !ok {
		id = uint32(len(r.ids))
		r.ids[series] = id
	}
	return id
}

func (r *Recorder) add(k sampleKey, now int32) {
	a, ok := r.seen[k]
	if !ok {
		a.first = now
		if k.t < r.cut {
			r.newest = now
		}
	}
	a.times++
	r.seen[k] = a
}

// Received is what the recorder holds: requests, faults answered by kind,
// and how many distinct samples arrived.
func (r *Recorder) Received() (requests int, faults map[string]int, samples int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := make(map[string]int, len(r.faults))
	for k, v := range r.faults {
		f[k] = v
	}
	return r.requests, f, len(r.seen)
}

// newestBefore returns when a sample older than cut last arrived for the
// first time (the zero time for none since the first call with this cut).
func (r *Recorder) newestBefore(cut time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := cut.UnixMilli(); c != r.cut {
		r.cut, r.newest = c, 0
		return time.Time{}
	}
	if r.newest == 0 {
		return time.Time{}
	}
	return r.begin.Add(time.Duration(r.newest) * time.Millisecond)
}

// flap answers about half the requests with a fault, picked at random,
// and reports whether it answered. Some faults take the samples first
// (the receiver stored them, the sender cannot know): they come back as
// duplicates, never as losses.
func (r *Recorder) flap(w http.ResponseWriter, req *http.Request) bool {
	r.mu.Lock()
	pick := r.rng.IntN(16)
	r.mu.Unlock()
	if pick < len(refusals) {
		f := refusals[pick]
		r.count(f.kind)
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		http.Error(w, f.kind, f.code)
		return true
	}
	switch pick {
	case 5:
		r.count("reset")
		hangUp(w)
	case 6: // stored, then the connection is reset before the answer
		if _, err := r.record(req); err == nil {
			r.count("stored, reset")
		}
		hangUp(w)
	case 7: // stored, answered after the sender gave up (remote_timeout)
		if _, err := r.record(req); err == nil {
			r.count("stored, slow answer")
		}
		select {
		case <-req.Context().Done():
		case <-time.After(slowAnswer):
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		return r.flapBody(w, req, pick)
	}
	return true
}

// refusals are flap's answers that refuse a request without reading it.
var refusals = []struct {
	kind       string
	code       int
	retryAfter string
}{
	{"500", http.StatusInternalServerError, ""},
	{"502", http.StatusBadGateway, ""},
	{"503", http.StatusServiceUnavailable, ""},
	{"429 Retry-After", http.StatusTooManyRequests, "1"},
	{"429", http.StatusTooManyRequests, ""},
}

// slowAnswer is longer than the scenarios' remote_timeout.
const slowAnswer = 4 * time.Second

// flapBody takes the samples and answers 200 with a body that is garbage
// or that never ends (until the sender hangs up); other picks are healthy.
func (r *Recorder) flapBody(w http.ResponseWriter, req *http.Request, pick int) bool {
	switch pick {
	case 8:
		if _, err := r.record(req); err != nil {
			return false
		}
		r.count("stored, 200 garbage")
		w.WriteHeader(http.StatusOK)
		garbage := make([]byte, 512)
		for i := range garbage {
			garbage[i] = byte(i*7 + 3)
		}
		w.Write(garbage)
	case 9:
		if _, err := r.record(req); err != nil {
			return false
		}
		r.count("stored, endless body")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := w.Write([]byte("more ")); err != nil {
				return true
			}
			if fl != nil {
				fl.Flush()
			}
			select {
			case <-req.Context().Done():
				return true
			case <-tick.C:
			}
		}
	default:
		return false
	}
	return true
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(errors.New("reliability: the recorder's server cannot hijack"))
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}
