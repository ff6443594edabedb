package watcher_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/inspect"
	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/watcher"
)

// TestBackfillHandsOverEverything: with Backfill, a finished log written by
// upstream (with a checkpoint holding samples, and samples whose series
// record comes later in their segment) is handed over whole: exactly the
// samples, histograms and exemplars inspect counts, and the series of every
// one of them first when the log has its series record. (The snappy fixture
// holds 5,225 samples of 95 series that no series record in the log names:
// no one can label them; a queue drops and counts them as unknown_series.)
func TestBackfillHandsOverEverything(t *testing.T) {
	for fixture, unlabelled := range map[string]int{"none": 0, "snappy": 5225, "zstd": 0} {
		t.Run(fixture, func(t *testing.T) {
			dir := "../testdata/wal/" + fixture
			want, err := inspect.Dir(wal.OS, dir)
			require.NoError(t, err)

			rec := newRecorder(0)
			w, err := watcher.New(rec, watcher.Options{
				Dir: dir, Name: "test", Start: watcher.FromBeginning,
				StopAtEnd: true, Backfill: true, SendHistograms: true, SendExemplars: true,
			})
			require.NoError(t, err)
			require.ErrorIs(t, w.Run(t.Context()), watcher.ErrReachedEnd)

			require.Equal(t, want.Samples, len(rec.samples), "samples")
			require.Equal(t, want.Histograms, len(rec.hists)+len(rec.fhists), "histograms")
			require.Equal(t, want.Exemplars, len(rec.exemplar), "exemplars")
			unknown := 0
			for _, s := range rec.samples {
				if _, ok := rec.series[s.Ref]; !ok {
					unknown++
				}
			}
			require.Equal(t, unlabelled, unknown, "samples whose series the log does not hold")
		})
	}
}

// TestBackfillPassesOverDamagedCheckpoint: a checkpoint damaged in its
// third page. Backfill hands over every sample of the log but those of the
// checkpoint's records the damage reached: the checkpoint's records after
// the damage arrive too.
func TestBackfillPassesOverDamagedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../testdata/wal/snappy")))
	whole, err := inspect.Dir(wal.OS, dir)
	require.NoError(t, err)
	cp := filepath.Join(dir, "checkpoint.00000001")
	clean := readSamples(t, cp, (*wal.Reader).Resync)

	seg := wal.SegmentPath(cp, 0)
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	require.Greater(t, len(data), 4*wal.PageSize)
	copy(data[2*wal.PageSize+100:], bytes.Repeat([]byte{0xff}, 64))
	require.NoError(t, os.WriteFile(seg, data, 0o666))
	kept := readSamples(t, cp, (*wal.Reader).Resync)
	beforeDamage := readSamples(t, cp, func(*wal.Reader) bool { return false })
	require.Less(t, len(kept), len(clean), "the damage costs samples")
	require.Greater(t, len(kept), len(beforeDamage), "and not all after it")

	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	w, err := watcher.New(rec, watcher.Options{
		Dir: dir, Name: "test", Start: watcher.FromBeginning, Metrics: watcher.NewMetrics(reg),
		StopAtEnd: true, Backfill: true, SendHistograms: true, SendExemplars: true,
	})
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(t.Context()), watcher.ErrReachedEnd)
	require.Equal(t, whole.Samples-(len(clean)-len(kept)), len(rec.samples), "every sample but the damaged records'")
	require.GreaterOrEqual(t, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"), 1.0)
}
