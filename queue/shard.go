package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// item is one sample (or histogram, or exemplar) waiting in a shard.
type item struct {
	labels []byte // the series' encoded labels; never changed in place
	t      int64
	v      float64
	h      *histogram.Histogram      // a copy the shard owns, or nil
	fh     *histogram.FloatHistogram // a copy the shard owns, or nil
	exl    labels.Labels             // exemplar labels when this is an exemplar
	kind   itemKind
	seq    uint64 // ack tracker record
}

type itemKind uint8

const (
	kindSample itemKind = iota
	kindHistogram
	kindFloatHistogram
	kindExemplar
)

// requestBuilder turns items into the protobuf bytes of one request. The
// RW1 and RW2 encoders implement it.
type requestBuilder interface {
	Reset()
	AddSample(labels []byte, t int64, v float64)
	AddHistogram(labels []byte, t int64, h *histogram.Histogram)
	AddFloatHistogram(labels []byte, t int64, h *histogram.FloatHistogram)
	AddExemplar(labels []byte, exemplarLabels labels.Labels, t int64, v float64)
	Bytes() []byte
}

// shard holds a bounded buffer of items and one goroutine that batches them
// into requests and sends each until the endpoint takes it (or refuses it
// for good). Items of one series always go to the same shard, so a series'
// samples are sent in order.
type shard struct {
	m        *Manager
	capacity int

	mu  sync.Mutex
	buf []item // waiting, oldest first

	req Request // the request being sent, reused (it escapes to the Sender)

	wake chan struct{} // a batch may be ready
}

func newShard(m *Manager, capacity int) *shard {
	return &shard{m: m, capacity: capacity, wake: make(chan struct{}, 1)}
}

// push adds an item if there is room and reports whether it did.
func (s *shard) push(it item) bool {
	s.mu.Lock()
	if len(s.buf) >= s.capacity {
		s.mu.Unlock()
		return false
	}
	s.buf = append(s.buf, it)
	full := len(s.buf) >= s.m.batchSize
	s.mu.Unlock()
	if full {
		s.signal()
	}
	return true
}

func (s *shard) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shard) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

// run sends batches until ctx ends: a full batch at once, a partial one
// when the batch deadline passes without a send. When drain is closed it
// sends everything left and returns (a reshard or a flush).
func (s *shard) run(ctx context.Context, drain <-chan struct{}) {
	b := s.m.newBuilder()
	var batch []item
	var body []byte
	deadline := time.NewTimer(s.m.deadline)
	defer deadline.Stop()
	send := func(least int) bool {
		if batch = s.take(batch[:0], least); len(batch) == 0 {
			return false
		}
		body = s.sendBatch(ctx, b, batch, body)
		resetTimer(deadline, s.m.deadline)
		return true
	}
	for ctx.Err() == nil {
		if send(s.m.batchSize) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-deadline.C:
			send(1)
			deadline.Reset(s.m.deadline)
		case <-drain:
			for ctx.Err() == nil && send(1) {
			}
			return
		}
	}
}

// take moves up to a batch of items into dst if at least least are waiting.
func (s *shard) take(dst []item, least int) []item {
	s.mu.Lock()
	n := len(s.buf)
	if n == 0 || n < least {
		s.mu.Unlock()
		return dst
	}
	n = min(n, s.m.batchSize)
	dst = append(dst, s.buf[:n]...)
	rest := copy(s.buf, s.buf[n:])
	clear(s.buf[rest:])
	s.buf = s.buf[:rest]
	s.mu.Unlock()
	s.m.roomFreed()
	return dst
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}

// sendBatch encodes the batch once and sends the same bytes until the
// endpoint accepts them, refuses them for good, or ctx ends. It returns the
// compression buffer for reuse.
func (s *shard) sendBatch(ctx context.Context, b requestBuilder, batch []item, body []byte) []byte {
	m := s.m
	b.Reset()
	req := &s.req
	*req = Request{Protocol: m.protocol}
	for i := range batch {
		it := &batch[i]
		switch it.kind {
		case kindSample:
			b.AddSample(it.labels, it.t, it.v)
			req.Samples++
		case kindHistogram:
			b.AddHistogram(it.labels, it.t, it.h)
			req.Histograms++
		case kindFloatHistogram:
			b.AddFloatHistogram(it.labels, it.t, it.fh)
			req.Histograms++
		case kindExemplar:
			b.AddExemplar(it.labels, it.exl, it.t, it.v)
			req.Exemplars++
		}
	}
	raw := b.Bytes()
	body = snappy.Encode(body[:cap(body)], raw)
	req.Body = body
	outcome := m.send(ctx, req)
	m.finish(batch, req, outcome)
	clear(batch) // release histogram copies and label references
	return body
}

// sendOutcome is how a batch ended.
type sendOutcome int

const (
	sent     sendOutcome = iota // accepted by the endpoint
	rejected                    // refused for good: dropped and counted
	aborted                     // ctx ended first: stays pending
)

// send sends req until it is accepted, refused for good, or ctx ends.
func (m *Manager) send(ctx context.Context, req *Request) sendOutcome {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		_, err := m.opts.Sender.Send(ctx, req, attempt)
		m.metrics.sentBatchDuration.Observe(time.Since(start).Seconds())
		if err == nil {
			m.sendSeconds.observe(time.Since(start).Seconds())
			m.metrics.bytesSent.Add(float64(len(req.Body)))
			return sent
		}
		if ctx.Err() != nil {
			return aborted
		}
		var se *SendError
		if !errors.As(err, &se) || !se.Retryable {
			m.logRejected(req, err)
			return rejected
		}
		m.metrics.retried(req)
		delay := m.backoff(attempt, se.RetryAfter)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return aborted
		case <-t.C:
		}
	}
}
