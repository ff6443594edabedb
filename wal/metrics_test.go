package wal_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
)

func TestWriterMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	w, err := wal.Open(t.TempDir(), wal.Options{Registerer: reg, Compression: wal.Snappy, SegmentSize: 2 * wal.PageSize})
	require.NoError(t, err)
	require.NoError(t, w.Log([]byte(strings.Repeat("compressible ", 1000))))
	_, err = w.NextSegment()
	require.NoError(t, err)

	names := []string{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	require.ElementsMatch(t, []string{
		"prometheus_tsdb_wal_fsync_duration_seconds",
		"prometheus_tsdb_wal_page_flushes_total",
		"prometheus_tsdb_wal_completed_pages_total",
		"prometheus_tsdb_wal_truncations_failed_total",
		"prometheus_tsdb_wal_truncations_total",
		"prometheus_tsdb_wal_segment_current",
		"prometheus_tsdb_wal_writes_failed_total",
		"prometheus_tsdb_wal_record_part_writes_total",
		"prometheus_tsdb_wal_record_parts_bytes_written_total",
		"prometheus_tsdb_wal_record_bytes_saved_total",
		"prometheus_tsdb_wal_storage_size_bytes",
	}, names)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP prometheus_tsdb_wal_completed_pages_total Total number of completed pages.
# TYPE prometheus_tsdb_wal_completed_pages_total counter
prometheus_tsdb_wal_completed_pages_total 1
# HELP prometheus_tsdb_wal_segment_current Write log segment index that TSDB is currently writing to.
# TYPE prometheus_tsdb_wal_segment_current gauge
prometheus_tsdb_wal_segment_current 1
`), "prometheus_tsdb_wal_completed_pages_total", "prometheus_tsdb_wal_segment_current"))
	require.NoError(t, w.Close())
}
