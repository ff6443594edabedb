package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

const (
	// maxBodyBytes bounds a request body, compressed and decompressed
	// alike (upstream's receiver uses the same 32 MiB).
	maxBodyBytes = 32 << 20
	// maxPooledBytes is the largest buffer put back in the pool; a rare
	// huge request does not keep its memory alive.
	maxPooledBytes = 4 << 20
	// shutdownGrace is how long Close and a cancelled Start context let
	// requests in flight finish.
	shutdownGrace = 5 * time.Second

	// The RW 2.0 response headers with what was written.
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"

	protoRW1 = "prometheus.WriteRequest"
	protoRW2 = "io.prometheus.write.v2.Request"
)

// Receiver is a remote-write endpoint that decodes and counts what it is
// sent and keeps nothing. It serves HTTP itself (Start, Close) or as an
// http.Handler mounted anywhere; it answers on every path.
//
// The zero value is ready to use. A Receiver must not be copied after
// first use. Its methods are safe for concurrent use.
type Receiver struct {
	requests   atomic.Uint64
	rejected   atomic.Uint64
	bytes      atomic.Uint64
	series     atomic.Uint64
	samples    atomic.Uint64
	histograms atomic.Uint64
	exemplars  atomic.Uint64

	mu      sync.Mutex
	stop    chan struct{} // closed by Close; nil before Start
	stopped bool
	done    chan struct{} // closed when the server has stopped
	err     error         // the server's error, read after done
}

// ReceiverStats are a Receiver's cumulative counts since it was created.
type ReceiverStats struct {
	// Requests is the number of requests accepted (answered 2xx).
	Requests uint64
	// Rejected is the number of requests refused (answered 4xx).
	Rejected uint64
	// Bytes is the size of the accepted request bodies as sent
	// (compressed).
	Bytes uint64
	// Series is the number of time series entries in accepted requests;
	// a series sent in two requests counts twice.
	Series uint64
	// Samples is the number of float samples accepted.
	Samples uint64
	// Histograms is the number of native histogram samples accepted.
	Histograms uint64
	// Exemplars is the number of exemplars accepted.
	Exemplars uint64
}

// Stats returns the counts so far. Each field is read atomically; the
// fields of one call may straddle a request being counted.
func (r *Receiver) Stats() ReceiverStats {
	return ReceiverStats{
		Requests:   r.requests.Load(),
		Rejected:   r.rejected.Load(),
		Bytes:      r.bytes.Load(),
		Series:     r.series.Load(),
		Samples:    r.samples.Load(),
		Histograms: r.histograms.Load(),
		Exemplars:  r.exemplars.Load(),
	}
}

// Start listens on addr ("127.0.0.1:0" when empty: a free loopback port)
// and serves r there until ctx is done or Close is called. It returns the
// URL to put in remote_write, http://ADDR/api/v1/write. A Receiver is
// started at most once.
//
// The server runs in goroutines owned by r; Close stops them and waits for
// them. After ctx is done Close must still be called to wait for them.
func (r *Receiver) Start(ctx context.Context, addr string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		return "", errors.New("demo: receiver already started")
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("demo: receiver listen: %w", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	r.stop = make(chan struct{})
	r.done = make(chan struct{})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() {
		defer close(r.done)
		select {
		case <-ctx.Done():
		case <-r.stop:
		case err := <-serveErr:
			r.err = fmt.Errorf("demo: receiver: %w", err)
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
			r.err = fmt.Errorf("demo: receiver: %w", err)
		}
	}()
	return "http://" + ln.Addr().String() + "/api/v1/write", nil
}

// Close stops the server started by Start, letting requests in flight
// finish for up to 5s, and waits until it has stopped. It returns the
// error that stopped the server early, if any. Close without Start, and
// after Close, does nothing.
func (r *Receiver) Close() error {
	r.mu.Lock()
	if r.stop != nil && !r.stopped {
		close(r.stop)
		r.stopped = true
	}
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return nil
	}
	<-done
	return r.err
}

// ServeHTTP decodes one remote-write request and counts it. It answers 204
// on success (for RW 2.0 with the -Samples-, -Histograms- and
// -Exemplars-Written headers), 405 to a method other than POST, 415 to an
// unknown content type or encoding, 413 to a body over 32 MiB and 400 to a
// body that does not decode.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.reject(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	proto, err := parseContentType(req.Header.Get("Content-Type"))
	if err != nil {
		r.reject(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	if enc := req.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		r.reject(w, "unsupported Content-Encoding "+strconv.Quote(enc)+", want snappy", http.StatusUnsupportedMediaType)
		return
	}

	s := scratchPool.Get().(*scratch)
	defer s.release()
	n, c, err := s.decode(http.MaxBytesReader(w, req.Body, maxBodyBytes), proto)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		r.reject(w, err.Error(), status)
		return
	}

	r.requests.Add(1)
	r.bytes.Add(uint64(n))
	r.series.Add(c.series)
	r.samples.Add(c.samples)
	r.histograms.Add(c.histograms)
	r.exemplars.Add(c.exemplars)
	if proto == protoRW2 {
		h := w.Header()
		h.Set(headerSamplesWritten, strconv.FormatUint(c.samples, 10))
		h.Set(headerHistogramsWritten, strconv.FormatUint(c.histograms, 10))
		h.Set(headerExemplarsWritten, strconv.FormatUint(c.exemplars, 10))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *Receiver) reject(w http.ResponseWriter, msg string, status int) {
	r.rejected.Add(1)
	http.Error(w, msg, status)
}

// parseContentType returns the message a Content-Type names: protoRW1 for
// application/x-protobuf without a proto parameter (or no header at all).
func parseContentType(ct string) (string, error) {
	if ct == "" {
		return protoRW1, nil
	}
	media, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("content type %q: %w", ct, err)
	}
	if media != "application/x-protobuf" {
		return "", fmt.Errorf("content type %q: want application/x-protobuf", ct)
	}
	switch p, ok := params["proto"]; {
	case !ok, p == protoRW1:
		return protoRW1, nil
	case p == protoRW2:
		return protoRW2, nil
	default:
		return "", fmt.Errorf("content type %q: unknown proto %q, want %s or %s", ct, p, protoRW1, protoRW2)
	}
}

var errTooLarge = fmt.Errorf("request body over %d bytes", maxBodyBytes)

// counts is what one request held.
type counts struct {
	series, samples, histograms, exemplars uint64
}

// scratch holds the buffers and messages one request is decoded into;
// they are reused through scratchPool.
type scratch struct {
	body []byte
	raw  []byte
	rw1  prompb.WriteRequest
	rw2  writev2.Request
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release puts s back in the pool unless it grew too large to keep.
func (s *scratch) release() {
	if cap(s.body) > maxPooledBytes || cap(s.raw) > maxPooledBytes {
		return
	}
	scratchPool.Put(s)
}

// decode reads, decompresses and decodes one request body of the given
// message type. It returns the compressed size and what the message held.
func (s *scratch) decode(body io.Reader, proto string) (int, counts, error) {
	var err error
	s.body, err = readAll(s.body[:0], body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return 0, counts{}, errTooLarge
		}
		return 0, counts{}, fmt.Errorf("read body: %w", err)
	}
	n, err := snappy.DecodedLen(s.body)
	if err != nil {
		return 0, counts{}, fmt.Errorf("snappy: %w", err)
	}
	if n > maxBodyBytes {
		return 0, counts{}, errTooLarge
	}
	if cap(s.raw) < n {
		s.raw = make([]byte, n)
	}
	raw, err := snappy.Decode(s.raw[:cap(s.raw)], s.body)
	if err != nil {
		return 0, counts{}, fmt.Errorf("snappy: %w", err)
	}
	var c counts
	if proto == protoRW2 {
		c, err = s.decodeRW2(raw)
	} else {
		c, err = s.decodeRW1(raw)
	}
	return len(s.body), c, err
}

func (s *scratch) decodeRW1(raw []byte) (counts, error) {
	// gogo's Unmarshal appends to repeated fields: start empty, keep the
	// capacity.
	s.rw1 = prompb.WriteRequest{Timeseries: s.rw1.Timeseries[:0], Metadata: s.rw1.Metadata[:0]}
	if err := s.rw1.Unmarshal(raw); err != nil {
		return counts{}, fmt.Errorf("decode prometheus.WriteRequest: %w", err)
	}
	c := counts{series: uint64(len(s.rw1.Timeseries))}
	for i := range s.rw1.Timeseries {
		ts := &s.rw1.Timeseries[i]
		c.samples += uint64(len(ts.Samples))
		c.histograms += uint64(len(ts.Histograms))
		c.exemplars += uint64(len(ts.Exemplars))
	}
	return c, nil
}

func (s *scratch) decodeRW2(raw []byte) (counts, error) {
	s.rw2 = writev2.Request{Symbols: s.rw2.Symbols[:0], Timeseries: s.rw2.Timeseries[:0]}
	if err := s.rw2.Unmarshal(raw); err != nil {
		return counts{}, fmt.Errorf("decode io.prometheus.write.v2.Request: %w", err)
	}
	nsym := uint32(len(s.rw2.Symbols))
	c := counts{series: uint64(len(s.rw2.Timeseries))}
	for i := range s.rw2.Timeseries {
		ts := &s.rw2.Timeseries[i]
		if err := checkRefs(ts.LabelsRefs, nsym); err != nil {
			return counts{}, fmt.Errorf("timeseries %d: labels: %w", i, err)
		}
		for j := range ts.Exemplars {
			if err := checkRefs(ts.Exemplars[j].LabelsRefs, nsym); err != nil {
				return counts{}, fmt.Errorf("timeseries %d: exemplar %d: %w", i, j, err)
			}
		}
		// A zero reference means "unset" even in an empty symbols table.
		if m := ts.Metadata; (m.HelpRef != 0 && m.HelpRef >= nsym) || (m.UnitRef != 0 && m.UnitRef >= nsym) {
			return counts{}, fmt.Errorf("timeseries %d: metadata: symbol reference out of range (%d symbols)", i, nsym)
		}
		c.samples += uint64(len(ts.Samples))
		c.histograms += uint64(len(ts.Histograms))
		c.exemplars += uint64(len(ts.Exemplars))
	}
	return c, nil
}

// checkRefs reports whether refs are name/value pairs of symbols that
// exist.
func checkRefs(refs []uint32, nsym uint32) error {
	if len(refs)%2 != 0 {
		return fmt.Errorf("odd number of label references (%d)", len(refs))
	}
	for _, ref := range refs {
		if ref >= nsym {
			return fmt.Errorf("symbol reference %d out of range (%d symbols)", ref, nsym)
		}
	}
	return nil
}

// readAll is io.ReadAll into dst's capacity.
func readAll(dst []byte, r io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
