package watcher

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/walship/walship/wal/record"
)

// Metrics are the watcher metrics of a process, labelled by consumer. The
// names starting with prometheus_wal_watcher_ are upstream's; the others
// count what upstream does not: losses, skipped damage and lag.
type Metrics struct {
	recordsRead       *prometheus.CounterVec
	decodeFailures    *prometheus.CounterVec
	currentSegment    *prometheus.GaugeVec
	notificationsSkip *prometheus.CounterVec
	corruptions       *prometheus.CounterVec
	skippedBytes      *prometheus.CounterVec
	gapSegments       *prometheus.CounterVec
	gapSamples        *prometheus.CounterVec
	lagBytes          *prometheus.GaugeVec
	lagSegments       *prometheus.GaugeVec
	positionSaves     *prometheus.CounterVec
	positionFailures  *prometheus.CounterVec
}

// NewMetrics creates the watcher metrics and registers them on reg (nil
// registers nothing).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"consumer"}, labels...))
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"consumer"})
	}
	m := &Metrics{
		recordsRead:       counter("prometheus_wal_watcher_records_read_total", "Number of records read by the WAL watcher from the WAL.", "type"),
		decodeFailures:    counter("prometheus_wal_watcher_record_decode_failures_total", "Number of records read by the WAL watcher that resulted in an error when decoding."),
		currentSegment:    gauge("prometheus_wal_watcher_current_segment", "Current segment the WAL watcher is reading records from."),
		notificationsSkip: counter("prometheus_wal_watcher_notifications_skipped_total", "The number of WAL write notifications that the Watcher has skipped due to already being in a WAL read routine."),
		corruptions:       counter("walship_wal_watcher_corruptions_total", "Damaged places in the WAL the watcher passed over, reading on at the next intact record."),
		skippedBytes:      counter("walship_wal_watcher_skipped_bytes_total", "Bytes of the WAL the watcher could not read, by reason.", "reason"),
		gapSegments:       counter("walship_wal_watcher_gap_segments_total", "Segments deleted before the watcher read them."),
		gapSamples:        counter("walship_wal_watcher_gap_samples_estimated_total", "Estimated samples in segments deleted before the watcher read them."),
		lagBytes:          gauge("walship_wal_watcher_lag_bytes", "Bytes of WAL between the acknowledged position and the end of the newest segment."),
		lagSegments:       gauge("walship_wal_watcher_lag_segments", "Segments between the acknowledged position and the newest segment."),
		positionSaves:     counter("walship_wal_watcher_position_saves_total", "Acknowledged positions saved durably."),
		positionFailures:  counter("walship_wal_watcher_position_save_failures_total", "Failed attempts to save the acknowledged position."),
	}
	if reg != nil {
		reg.MustRegister(m.recordsRead, m.decodeFailures, m.currentSegment, m.notificationsSkip, m.corruptions,
			m.skippedBytes, m.gapSegments, m.gapSamples, m.lagBytes, m.lagSegments, m.positionSaves, m.positionFailures)
	}
	return m
}

// consumerMetrics are the children of Metrics for one consumer, curried
// once so that the read loop does no label lookups.
type consumerMetrics struct {
	recordsRead       [256]prometheus.Counter // by type byte; unknown types share one
	decodeFailures    prometheus.Counter
	currentSegment    prometheus.Gauge
	notificationsSkip prometheus.Counter
	corruptions       prometheus.Counter
	skippedCorrupt    prometheus.Counter
	skippedTorn       prometheus.Counter
	gapSegments       prometheus.Counter
	gapSamples        prometheus.Counter
	lagBytes          prometheus.Gauge
	lagSegments       prometheus.Gauge
	positionSaves     prometheus.Counter
	positionFailures  prometheus.Counter
}

func (m *Metrics) forConsumer(name string) *consumerMetrics {
	c := &consumerMetrics{
		decodeFailures:    m.decodeFailures.WithLabelValues(name),
		currentSegment:    m.currentSegment.WithLabelValues(name),
		notificationsSkip: m.notificationsSkip.WithLabelValues(name),
		corruptions:       m.corruptions.WithLabelValues(name),
		skippedCorrupt:    m.skippedBytes.WithLabelValues(name, "corruption"),
		skippedTorn:       m.skippedBytes.WithLabelValues(name, "torn_segment"),
		gapSegments:       m.gapSegments.WithLabelValues(name),
		gapSamples:        m.gapSamples.WithLabelValues(name),
		lagBytes:          m.lagBytes.WithLabelValues(name),
		lagSegments:       m.lagSegments.WithLabelValues(name),
		positionSaves:     m.positionSaves.WithLabelValues(name),
		positionFailures:  m.positionFailures.WithLabelValues(name),
	}
	unknown := m.recordsRead.WithLabelValues(name, record.Unknown.String())
	for t := range c.recordsRead {
		c.recordsRead[t] = unknown
	}
	for t := record.Series; t <= record.MinValidTime; t++ {
		c.recordsRead[t] = m.recordsRead.WithLabelValues(name, t.String())
	}
	return c
}
