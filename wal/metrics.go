package wal

import (
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
)

// writerMetrics are the Writer's metrics, named as upstream names them:
// prometheus_tsdb_wal_*, or prometheus_tsdb_out_of_order_wbl_* for a
// directory named "wbl".
type writerMetrics struct {
	fsyncDuration     prometheus.Summary
	pageFlushes       prometheus.Counter
	pagesCompleted    prometheus.Counter
	truncationsFailed prometheus.Counter
	truncations       prometheus.Counter
	currentSegment    prometheus.Gauge
	writesFailed      prometheus.Counter
	fragmentWrites    prometheus.Counter
	fragmentBytes     prometheus.Counter
	bytesSaved        prometheus.Counter
}

func newWriterMetrics(reg prometheus.Registerer, dir string, fsys FS, comp Compression) *writerMetrics {
	prefix := "prometheus_tsdb_wal_"
	if filepath.Base(dir) == "wbl" {
		prefix = "prometheus_tsdb_out_of_order_wbl_"
	}
	m := &writerMetrics{
		fsyncDuration: prometheus.NewSummary(prometheus.SummaryOpts{
			Name:       prefix + "fsync_duration_seconds",
			Help:       "Duration of write log fsync.",
			Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001},
		}),
		pageFlushes:       counter(prefix+"page_flushes_total", "Total number of page flushes."),
		pagesCompleted:    counter(prefix+"completed_pages_total", "Total number of completed pages."),
		truncationsFailed: counter(prefix+"truncations_failed_total", "Total number of write log truncations that failed."),
		truncations:       counter(prefix+"truncations_total", "Total number of write log truncations attempted."),
		currentSegment: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: prefix + "segment_current",
			Help: "Write log segment index that TSDB is currently writing to.",
		}),
		writesFailed:   counter(prefix+"writes_failed_total", "Total number of write log writes that failed."),
		fragmentWrites: counter(prefix+"record_part_writes_total", "Total number of record parts written before flushing."),
		fragmentBytes:  counter(prefix+"record_parts_bytes_written_total", "Total number of record part bytes written before flushing, including CRC and compression headers."),
	}
	saved := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "record_bytes_saved_total",
		Help: "Total number of bytes saved by the optional record compression. Use this metric to learn about the effectiveness compression.",
	}, []string{"compression"})
	m.bytesSaved = saved.WithLabelValues(string(comp))
	if reg != nil {
		size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: prefix + "storage_size_bytes",
			Help: "Size of the write log directory.",
		}, func() float64 { return float64(dirSize(fsys, dir)) })
		reg.MustRegister(m.fsyncDuration, m.pageFlushes, m.pagesCompleted, m.truncationsFailed,
			m.truncations, m.currentSegment, m.writesFailed, m.fragmentWrites, m.fragmentBytes, saved, size)
	}
	return m
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// dirSize adds up the sizes of the files in dir and one level of
// subdirectories (checkpoints), which is all a log directory holds.
func dirSize(fsys FS, dir string) int64 {
	var total int64
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return 0
	}
	for _, e := range entries {
		if e.IsDir() {
			total += dirSize(fsys, filepath.Join(dir, e.Name()))
			continue
		}
		if info, err := e.Info(); err == nil {
			total += info.Size()
		}
	}
	return total
}
