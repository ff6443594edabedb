package queue

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"

	"github.com/walship/walship/wal/record"
)

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

// noteMetadata records metadata for RW1's periodic metadata requests.
func (m *Manager) noteMetadata(meta []record.RefMetadata) {
	if !m.opts.Metadata.Send {
		return
	}
	for _, md := range meta {
		s := m.series.get(md.Ref)
		if s == nil || s.state != seriesKept {
			continue
		}
		if name := m.series.metricName(s.data); name != "" {
			m.families.set(name, md)
		}
	}
}

// sendMetadataLoop sends every metric family's metadata each
// send_interval while the queue speaks RW1 (RW2 requests carry metadata
// with their series), in requests of at most max_samples_per_send entries.
// A failed request is retried with the same bytes, like samples; one
// refused for good is counted and the next interval tries again.
func (m *Manager) sendMetadataLoop(ctx context.Context) {
	interval := time.Duration(m.opts.Metadata.SendInterval)
	if !m.opts.Metadata.Send || interval <= 0 {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var enc RW1Encoder
	var body []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if m.protocol() != RW1 {
			continue
		}
		all := m.families.all()
		per := max(m.opts.Metadata.MaxSamplesPerSend, 1)
		for chunk := range slices.Chunk(all, per) {
			enc.Reset()
			for _, md := range chunk {
				enc.AddMetadata(md.name, md.typ, md.help, md.unit)
			}
			body = snappy.Encode(body[:cap(body)], enc.Bytes())
			req := &Request{Protocol: RW1, Body: body, Metadata: len(chunk)}
			ok := m.sendMetadata(ctx, req)
			if req.BodyInUse {
				body = nil // the Sender may still read it
			}
			if !ok {
				break
			}
		}
	}
}

// sendMetadata sends one metadata request until it is accepted, refused
// for good, or ctx ends; it returns false when ctx ended.
func (m *Manager) sendMetadata(ctx context.Context, req *Request) bool {
	for attempt := 0; ; attempt++ {
		_, err := m.opts.Sender.Send(ctx, req, attempt)
		if err == nil {
			m.metrics.metadata.Add(float64(req.Metadata))
			m.metrics.metadataBytes.Add(float64(len(req.Body)))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var se *SendError
		if !errors.As(err, &se) || !se.Retryable {
			m.metrics.metadataFailed.Add(float64(req.Metadata))
			m.log.Error("Remote endpoint refused a metadata request", "metadata", req.Metadata, "err", err)
			return true
		}
		m.metrics.metadataRetried.Add(float64(req.Metadata))
		t := time.NewTimer(m.backoff(attempt, se.RetryAfter))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
