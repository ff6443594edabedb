package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// The sidecar tails the WAL of upstream's TSDB while it is being written
// (segments rotate under it) and every sample reaches the receiver; its
// positions live under --storage.agent.path, nothing is written in the WAL
// directory, and SIGTERM exits 0.
func TestSidecarShipsLiveTSDB(t *testing.T) {
	const (
		series  = 50
		batches = 400
	)
	data := t.TempDir()
	opts := tsdb.DefaultOptions()
	opts.WALSegmentSize = 64 * 1024 // several segments during the test
	db, err := tsdb.Open(data, nil, nil, opts, nil)
	require.NoError(t, err)
	defer db.Close()
	walDir := filepath.Join(data, "wal")

	appendBatch := func(i int) {
		app := db.Appender(context.Background())
		for s := 0; s < series; s++ {
			_, err := app.Append(0, labels.FromStrings("__name__", "sidecar_test", "series", strconv.Itoa(s)), int64(1_000_000+i*1000), float64(i))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
	}
	// Part of the data is there before the sidecar starts, the rest comes
	// while it runs.
	for i := 0; i < batches/3; i++ {
		appendBatch(i)
	}

	recv := testkit.NewReceiver(t)
	work := t.TempDir()
	cfg := writeFile(t, filepath.Join(work, "walship.yml"), "remote_write:\n"+remoteWrite("sidecar", recv.URL))
	p := start(t, work, true, "sidecar", "--config.file", cfg, "--wal.dir", walDir, "--storage.remote.flush-deadline", "5s")
	for i := batches / 3; i < batches; i++ {
		appendBatch(i)
	}
	require.Eventually(t, func() bool {
		return len(values(recv, "sidecar_test")) == batches
	}, 30*time.Second, 20*time.Millisecond, "receiver has %d of %d values", len(values(recv, "sidecar_test")), batches)
	for v, n := range values(recv, "sidecar_test") {
		require.GreaterOrEqual(t, n, series, "value %v", v)
	}
	segs := walEntries(t, walDir)
	require.Greater(t, len(segs), 2, "the TSDB rotated segments during the test")

	p.signal(syscall.SIGTERM)
	require.Equal(t, 0, p.wait(20*time.Second))
	// Positions are under the working directory's data-agent/, and the
	// sidecar created nothing in the WAL directory.
	pos, err := filepath.Glob(filepath.Join(work, "data-agent", "sidecar-positions", "*", "*.json"))
	require.NoError(t, err)
	require.Len(t, pos, 1)
	for _, name := range walEntries(t, walDir) {
		require.False(t, strings.Contains(name, "walship") || strings.Contains(name, "position"), name)
	}
}

func walEntries(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
