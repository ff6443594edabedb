package queue

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"

	"github.com/walship/walship/wal/record"
)

// metricFamilies is the metadata an RW1 queue sends on its own, per
// metadata_config: the newest type, help and unit the WAL gave for each
// metric name. The watcher's goroutine updates it; the metadata sender
// reads a snapshot.
type metricFamilies struct {
	mu       sync.Mutex
	byName   map[string]prompb.MetricMetadata
	changed  bool
	snapshot []prompb.MetricMetadata
}

func (f *metricFamilies) set(name string, md record.RefMetadata) {
	m := prompb.MetricMetadata{
		Type:             metadataTypeRW1(md.Type),
		MetricFamilyName: name,
		Help:             md.Help,
		Unit:             md.Unit,
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName == nil {
		f.byName = map[string]prompb.MetricMetadata{}
	}
	if old, ok := f.byName[name]; ok && old.Type == m.Type && old.Help == m.Help && old.Unit == m.Unit {
		return
	}
	f.byName[name] = m
	f.changed = true
}

// all returns every family's metadata sorted by name. The slice is shared
// until the next call.
func (f *metricFamilies) all() []prompb.MetricMetadata {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed {
		f.snapshot = f.snapshot[:0]
		for _, m := range f.byName {
			f.snapshot = append(f.snapshot, m)
		}
		slices.SortFunc(f.snapshot, func(a, b prompb.MetricMetadata) int {
			return strings.Compare(a.MetricFamilyName, b.MetricFamilyName)
		})
		f.changed = false
	}
	return f.snapshot
}

// metadataTypeRW1 maps the WAL's metric type to RW1's enum.
func metadataTypeRW1(t record.MetricType) prompb.MetricMetadata_MetricType {
	switch t {
	case record.Counter:
		return prompb.MetricMetadata_COUNTER
	case record.Gauge:
		return prompb.MetricMetadata_GAUGE
	case record.Histogram:
		return prompb.MetricMetadata_HISTOGRAM
	case record.GaugeHistogram:
		return prompb.MetricMetadata_GAUGEHISTOGRAM
	case record.Summary:
		return prompb.MetricMetadata_SUMMARY
	case record.Info:
		return prompb.MetricMetadata_INFO
	case record.Stateset:
		return prompb.MetricMetadata_STATESET
	}
	return prompb.MetricMetadata_UNKNOWN
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
		if name := s.data.labels.Get(model.MetricNameLabel); name != "" {
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
			raw, err := (&prompb.WriteRequest{Metadata: chunk}).Marshal()
			if err != nil {
				m.log.Error("Encoding a metadata request failed", "err", err)
				break
			}
			body = snappy.Encode(body[:cap(body)], raw)
			if !m.sendMetadata(ctx, &Request{Protocol: RW1, Body: body, Metadata: len(chunk)}) {
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
