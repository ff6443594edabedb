package watcher_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/faultfs"
	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

func TestFilePositions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "positions", "a.json")
	ffs := faultfs.New(wal.OS)
	store := watcher.NewFilePositions(ffs, path)

	_, ok, err := store.Load()
	require.NoError(t, err)
	require.False(t, ok, "nothing saved yet")

	first := record.Position{Segment: 3, Offset: 4096}
	require.NoError(t, store.Save(first))
	got, ok, err := store.Load()
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, first, got)

	// A failed rename or fsync leaves the previous position in place and no
	// temporary file behind.
	for _, rule := range []faultfs.Rule{{Op: faultfs.OpRename, Err: syscall.EIO}, {Op: faultfs.OpSync, Err: syscall.EIO}, {Op: faultfs.OpWrite}} {
		ffs.Add(rule)
		require.Error(t, store.Save(record.Position{Segment: 9}))
		ffs.Clear()
		got, _, err = store.Load()
		require.NoError(t, err)
		require.Equal(t, first, got)
		entries, err := os.ReadDir(filepath.Dir(path))
		require.NoError(t, err)
		require.Len(t, entries, 1)
	}

	// A damaged file is a clear error, not a silent restart from scratch.
	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o666))
	_, _, err = store.Load()
	require.ErrorContains(t, err, "not a position file")
}

// TestDamagedPositionFileStopsWatcher: Run refuses to guess where to start.
func TestDamagedPositionFileStopsWatcher(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 1, wal.PageSize)
	lw.scrape()
	lw.close()
	path := filepath.Join(t.TempDir(), "pos.json")
	require.NoError(t, os.WriteFile(path, []byte("{"), 0o666))
	w, err := watcher.New(newRecorder(0), watcher.Options{Dir: dir, Positions: watcher.NewFilePositions(nil, path)})
	require.NoError(t, err)
	require.ErrorContains(t, w.Run(t.Context()), "not a position file")
}

// TestMetricNames: the watcher exports upstream's metric names and its own,
// and the lag falls to zero once everything is acknowledged.
func TestMetricNames(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 10, wal.PageSize)
	for i := 0; i < 100; i++ {
		lw.scrape()
	}
	lw.close()
	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	_, stop := run(t, rec, watcher.Options{Dir: dir, Name: "ep", Metrics: watcher.NewMetrics(reg),
		Positions: watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "p.json")), SaveInterval: 1})
	testkit.Eventually(t, func() bool { return rec.count() == 1000 }, "everything arrives")
	testkit.Eventually(t, func() bool { return testkit.Metric(t, reg, "walship_wal_watcher_position_saves_total") > 0 }, "position saved")
	testkit.Eventually(t, func() bool { return testkit.Metric(t, reg, "walship_wal_watcher_lag_bytes") == 0 }, "no lag")
	require.NoError(t, stop())

	require.Equal(t, 101.0, testkit.Metric(t, reg, "prometheus_wal_watcher_records_read_total"), "1 series + 100 samples records")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{
		"prometheus_wal_watcher_records_read_total",
		"prometheus_wal_watcher_current_segment",
		"walship_wal_watcher_lag_bytes",
		"walship_wal_watcher_lag_segments",
		"walship_wal_watcher_position_saves_total",
	} {
		require.True(t, names[n], "metric %s exported", n)
	}
}
