package watcher_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/watcher"
)

// copyDir copies the segment files of a fixture directory.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), data, 0o666))
	}
	return to
}

// TestDamagedFixtures runs the watcher over each damaged copy of the
// upstream-written fixture: it delivers exactly the float samples our
// reader can read (the damage passed over), counts one corruption and
// exactly the bytes passed over for damage followed by an intact record
// or in a finished segment, and for a torn tail of the newest segment, or
// damage at its end, waits for the writer without counting bytes.
func TestDamagedFixtures(t *testing.T) {
	fixtures, err := os.ReadDir("../testdata/wal/damaged")
	require.NoError(t, err)
	require.NotEmpty(t, fixtures)
	for _, fx := range fixtures {
		t.Run(fx.Name(), func(t *testing.T) {
			dir := copyDir(t, filepath.Join("../testdata/wal/damaged", fx.Name()))
			want := readable(t, dir)
			last := lastSegment(t, dir)
			d := findDamage(t, dir)
			tornTail := d.found && d.err.Segment == last && errors.Is(d.err, wal.ErrTornRecord)

			reg := prometheus.NewRegistry()
			rec := newRecorder(0)
			_, stop := run(t, rec, watcher.Options{Dir: dir, Name: "fx", Start: watcher.FromBeginning, Metrics: watcher.NewMetrics(reg)})
			testkit.Eventually(t, func() bool { return rec.count() == len(want) }, "every readable sample arrives")
			require.NoError(t, stop())
			requireSameSamples(t, want, rec.received())

			skipped := testkit.Metric(t, reg, "walship_wal_watcher_skipped_bytes_total")
			switch {
			case !d.found || tornTail:
				require.Zero(t, skipped)
			case d.resumed >= 0:
				require.Equal(t, 1.0, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"))
				require.Equal(t, float64(d.resumed-d.err.Offset), skipped)
			case d.err.Segment == last:
				// Nothing intact after the damage yet: the newest
				// segment's rest is counted once the writer moves on.
				require.Zero(t, skipped)
			default:
				size := fileLen(t, wal.SegmentPath(dir, d.err.Segment))
				require.Equal(t, 1.0, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"))
				require.Equal(t, float64(size-d.err.Offset), skipped)
			}
		})
	}
}

func lastSegment(t *testing.T, dir string) int {
	_, last, err := wal.Segments(wal.OS, dir)
	require.NoError(t, err)
	return last
}

func fileLen(t *testing.T, path string) int64 {
	info, err := os.Stat(path)
	require.NoError(t, err)
	return info.Size()
}
