package queue

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/config"

	"github.com/walship/walship/wal/record"
)

// This file sends an RW1 queue's metric metadata (metadata_config) in
// requests of its own; RW2 requests carry metadata with their series.

// metricFamilies is the metadata an RW1 queue sends on its own, per
// metadata_config: the newest type, help and unit the WAL gave for each
// metric name. The watcher's goroutine updates it; the metadata sender
// reads a snapshot.
type metricFamilies struct {
	mu       sync.Mutex
	byName   map[string]familyMetadata
	changed  bool
	snapshot []familyMetadata
}

// familyMetadata is one metric family's metadata.
type familyMetadata struct {
	name, typ, help, unit string
}

func (f *metricFamilies) set(name string, md record.RefMetadata) {
	m := familyMetadata{name: name, typ: md.Type.String(), help: md.Help, unit: md.Unit}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName == nil {
		f.byName = map[string]familyMetadata{}
	}
	if f.byName[name] == m {
		return
	}
	f.byName[name] = m
	f.changed = true
}

// remove forgets a family (its last series is gone).
func (f *metricFamilies) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byName[name]; ok {
		delete(f.byName, name)
		f.changed = true
	}
}

// all returns every family's metadata sorted by name. The slice is shared
// until the next call.
func (f *metricFamilies) all() []familyMetadata {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed {
		f.snapshot = f.snapshot[:0]
		for _, m := range f.byName {
			f.snapshot = append(f.snapshot, m)
		}
		slices.SortFunc(f.snapshot, func(a, b familyMetadata) int { return strings.Compare(a.name, b.name) })
		f.changed = false
	}
	return f.snapshot
}

// metadataSender sends an RW1 queue's metric metadata on its own, per
// metadata_config; Run starts its loop beside the shards.
type metadataSender struct {
	families metricFamilies // the intake writes, the loop reads
	config   config.MetadataConfig
	sender   Sender
	proto    *protocolState
	backoffs Backoff
	metrics  *queueMetrics
	log      *slog.Logger

	// The request being built: used by one goroutine at a time (run's, or
	// the flush's after run returned).
	enc  rw1Encoder
	body []byte
}

// run sends every metric family's metadata each send_interval while the
// queue speaks RW1 (RW2 requests carry metadata with their series), in
// requests of at most max_samples_per_send entries, until ctx ends. A
// failed request is retried with the same bytes, like samples; one
// refused for good is counted and the next interval tries again.
func (s *metadataSender) run(ctx context.Context) {
	interval := time.Duration(s.config.SendInterval)
	if !s.config.Send || interval <= 0 {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		s.sendAll(ctx)
	}
}

// last sends every family's metadata once more as the queue is flushed:
// a queue that stops before its first send_interval (a replay) sends its
// metadata too. Call it once run has returned.
func (s *metadataSender) last(ctx context.Context) {
	if s.config.Send && s.config.SendInterval > 0 {
		s.sendAll(ctx)
	}
}

// sendAll sends every family's metadata while the queue speaks RW1, in
// requests of at most max_samples_per_send entries, until one cannot be
// sent before ctx ends.
func (s *metadataSender) sendAll(ctx context.Context) {
	if s.proto.current() != RW1 {
		return
	}
	all := s.families.all()
	per := max(s.config.MaxSamplesPerSend, 1)
	for chunk := range slices.Chunk(all, per) {
		s.enc.Reset()
		for _, md := range chunk {
			s.enc.AddMetadata(md.name, md.typ, md.help, md.unit)
		}
		s.body = snappy.Encode(s.body[:cap(s.body)], s.enc.Bytes())
		req := &Request{Protocol: RW1, Body: s.body, Metadata: len(chunk)}
		ok := s.send(ctx, req)
		if req.BodyInUse {
			s.body = nil // the Sender may still read it
		}
		if !ok {
			return
		}
	}
}

// send sends one metadata request until it is accepted, refused for good,
// or ctx ends; it returns false when ctx ended.
func (s *metadataSender) send(ctx context.Context, req *Request) bool {
	for attempt := 0; ; attempt++ {
		_, err := s.sender.Send(ctx, req, attempt)
		if err == nil {
			s.metrics.metadata.sent.Add(float64(req.Metadata))
			s.metrics.metadata.bytes.Add(float64(len(req.Body)))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var se *SendError
		if !errors.As(err, &se) || !se.Retryable {
			s.metrics.metadata.failed.Add(float64(req.Metadata))
			s.log.Error("Remote endpoint refused a metadata request", "metadata", req.Metadata, "err", err)
			return true
		}
		s.metrics.metadata.retried.Add(float64(req.Metadata))
		if !sleep(ctx, s.backoffs.Delay(attempt, se.RetryAfter)) {
			return false
		}
	}
}
