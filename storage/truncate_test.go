package storage

import (
	"context"
	"math"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/faultfs"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

const smallSegment = wal.PageSize

// fill commits n transactions of 20 series each, with timestamps from t0.
func fill(t *testing.T, db *DB, n int, t0 int64) {
	t.Helper()
	for c := 0; c < n; c++ {
		app := db.Appender(context.Background())
		for i := 0; i < 20; i++ {
			_, err := app.Append(0, series(i), t0+int64(c), float64(c))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
	}
}

func segmentIndexes(t *testing.T, dir string) []int {
	refs, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	var out []int
	for _, r := range refs {
		out = append(out, r.Index)
	}
	return out
}

func TestTruncateKeepsUnackedSegments(t *testing.T) {
	acked := record.Position{}
	db := openDB(t, t.TempDir(), Options{
		SegmentSize: smallSegment, Compression: wal.None,
		Acked: func() map[string]record.Position {
			return map[string]record.Position{"a": acked, "b": {Segment: math.MaxInt}}
		},
	})
	defer closeDB(t, db)
	fill(t, db, 2000, 1)
	segs := segmentIndexes(t, db.WALDir())
	require.Greater(t, len(segs), 4)

	// Endpoint "a" acknowledged up to the middle of segment 2.
	acked = record.Position{Segment: 2, Offset: 1000}
	require.NoError(t, db.Truncate(0))
	left := segmentIndexes(t, db.WALDir())
	require.Equal(t, 2, left[0], "segments from the acknowledged one on are kept")
	require.Equal(t, segs[len(segs)-1]+1, left[len(left)-1], "truncation started a new segment")
	cp, err := wal.LastCheckpoint(wal.OS, db.WALDir())
	require.NoError(t, err)
	require.Equal(t, 1, cp.Index)

	c := readLog(t, wal.OS, db.WALDir())
	require.Len(t, c.checkpointSeries, 20, "the checkpoint holds every live series")
	for _, s := range c.samples {
		require.Contains(t, c.series, s.Ref)
	}
	readUpstream(t, db.WALDir())

	// Everything acknowledged: all but the segment being written go.
	acked = record.Position{Segment: math.MaxInt}
	fill(t, db, 10, 10000)
	require.NoError(t, db.Truncate(0))
	left = segmentIndexes(t, db.WALDir())
	require.Len(t, left, 1)
	c = readLog(t, wal.OS, db.WALDir())
	require.Len(t, c.checkpointSeries, 20)
	refs, err := wal.ListCheckpoints(wal.OS, db.WALDir())
	require.NoError(t, err)
	require.Len(t, refs, 1, "older checkpoints are deleted")
}

func TestTruncateForgetsIdleSeriesButKeepsTheirRecordsWhileReferenced(t *testing.T) {
	db := openDB(t, t.TempDir(), Options{SegmentSize: smallSegment})
	defer closeDB(t, db)
	fill(t, db, 5, 1) // 20 series, timestamps 1..5
	require.NoError(t, db.Truncate(100))
	require.Equal(t, 0.0, testutil.ToFloat64(db.metrics.activeSeries))
	c := readLog(t, wal.OS, db.WALDir())
	require.Len(t, c.checkpointSeries, 20, "forgotten series stay while the segment that forgot them is not truncated")
	// A second truncation covers that segment: now they go.
	fill(t, db, 1, 200)
	require.NoError(t, db.Truncate(150))
	c = readLog(t, wal.OS, db.WALDir())
	require.Len(t, c.series, 20)
	for _, s := range c.samples {
		require.Contains(t, c.series, s.Ref)
	}
}

// TestDiskBudgetCountsExactlyWhatEachEndpointLoses deletes unacknowledged
// segments to meet the budget and checks the per-endpoint counter against
// a count made by reading the log before.
func TestDiskBudgetCountsExactlyWhatEachEndpointLoses(t *testing.T) {
	acked := map[string]record.Position{}
	reg := prometheus.NewRegistry()
	db := openDB(t, t.TempDir(), Options{
		SegmentSize: smallSegment, Compression: wal.None, Registerer: reg,
		MaxWALBytes: 3 * smallSegment,
		Acked:       func() map[string]record.Position { return acked },
	})
	defer closeDB(t, db)
	fill(t, db, 2000, 1)
	before := readLog(t, wal.OS, db.WALDir())
	segs := segmentIndexes(t, db.WALDir())
	require.Greater(t, len(segs), 6)

	acked["slow"] = record.Position{Segment: 0, Offset: 0}
	acked["mid"] = before.sampleStarts[len(before.sampleStarts)/4] // inside an early segment
	require.NoError(t, db.Truncate(0))

	left := segmentIndexes(t, db.WALDir())
	size, err := db.measure()
	require.NoError(t, err)
	require.LessOrEqual(t, size, int64(3*smallSegment), "within the budget")
	require.Greater(t, left[0], acked["mid"].Segment)

	want := map[string]int{}
	for _, start := range before.sampleStarts {
		if start.Segment >= left[0] {
			continue
		}
		for name, p := range acked {
			if !start.Less(p) {
				want[name]++
			}
		}
	}
	require.Positive(t, want["slow"])
	require.Positive(t, want["mid"])
	require.Less(t, want["mid"], want["slow"])
	for name, n := range want {
		require.Equal(t, float64(n), testutil.ToFloat64(db.metrics.unsentDeleted.WithLabelValues(name)), name)
	}
	c := readLog(t, wal.OS, db.WALDir())
	for _, s := range c.samples {
		require.Contains(t, c.series, s.Ref, "every sample left has its series")
	}
}

// TestDiskBudgetWakesRun: commits that take the log over its budget make
// Run truncate without waiting for TruncateFrequency.
func TestDiskBudgetWakesRun(t *testing.T) {
	truncated := make(chan struct{}, 100)
	db := openDB(t, t.TempDir(), Options{
		SegmentSize: smallSegment, Compression: wal.None, MaxWALBytes: 3 * smallSegment,
		Acked: func() map[string]record.Position { return map[string]record.Position{"dead": {}} },
	})
	db.onTruncate = func() { truncated <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- db.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		closeDB(t, db)
	}()
	fill(t, db, 2000, 1)
	<-truncated
	// Wait for the wake-ups still pending, then check the size.
	for len(db.budgetC) > 0 {
		<-truncated
	}
	db.truncMu.Lock()
	size, err := db.measure()
	db.truncMu.Unlock()
	require.NoError(t, err)
	require.Less(t, size, int64(400*20*20), "the log was cut back")
	require.Positive(t, testutil.ToFloat64(db.metrics.budgetTruncations))
}

func TestPlanTruncation(t *testing.T) {
	const p = wal.PageSize
	u := dirUsage{segments: []segmentSize{{3, 100}, {4, 100}, {5, 100}, {6, 100}, {7, 10}}, other: p + 50, checkpoint: p}
	for _, tc := range []struct {
		name       string
		protected  int
		max        int64
		wantLast   int
		wantForced bool
	}{
		{"nothing acknowledged", 3, 0, -1, false},
		{"acknowledged into 5", 5, 0, 4, false},
		{"all acknowledged keeps the active", math.MaxInt, 0, 6, false},
		{"under budget", 3, p + 1000, -1, false},
		{"budget forces two", 3, p + 260, 4, true},
		{"budget never takes the active", 3, 1, 6, true},
		{"acknowledged then budget", 4, p + 160, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last, forced := planTruncation(u, 7, tc.protected, tc.max)
			require.Equal(t, tc.wantLast, last)
			require.Equal(t, tc.wantForced, forced)
		})
	}
}

// TestCommitENOSPC: a full disk fails the commit, the log stays readable
// with every committed transaction, and the next commit works.
func TestCommitENOSPC(t *testing.T) {
	ffs := faultfs.New(wal.OS)
	db := openDB(t, t.TempDir(), Options{FS: ffs, SegmentSize: smallSegment, Compression: wal.None})
	fill(t, db, 3, 1)

	ffs.Add(faultfs.Rule{Op: faultfs.OpWrite, Partial: 10})
	committed := db.Committed()
	require.Equal(t, db.w.Position(), committed)
	app := db.Appender(context.Background())
	for i := 0; i < 30; i++ { // 10 new series
		_, err := app.Append(0, series(i), 100, 1)
		require.NoError(t, err)
	}
	err := app.Commit()
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, committed, db.Committed(), "a failed commit commits nothing")
	ffs.Clear()

	fill(t, db, 1, 200)
	require.True(t, committed.Less(db.Committed()))
	require.Equal(t, db.w.Position(), db.Committed())
	require.NoError(t, db.Close())
	c := readLog(t, wal.OS, db.WALDir())
	require.Len(t, c.samples, 4*20, "the failed commit left nothing behind")
	for _, s := range c.samples {
		require.NotEqual(t, int64(100), s.T)
		require.Contains(t, c.series, s.Ref)
	}
	readUpstream(t, db.WALDir())
}

// TestCommitRecoversAfterFailedFsync: the fsync of a finished segment
// fails (EIO). That commit fails, and so does every commit while no new
// segment can be started; then writing goes on in a new segment, where
// every series' record comes again before its samples, and every commit
// that succeeded is in the log, read by ours and upstream's readers.
func TestCommitRecoversAfterFailedFsync(t *testing.T) {
	ffs := faultfs.New(wal.OS)
	db := openDB(t, t.TempDir(), Options{FS: ffs, SegmentSize: smallSegment, Compression: wal.None})
	fill(t, db, 3, 1)
	ffs.Add(faultfs.Rule{Op: faultfs.OpSync, Err: syscall.EIO})
	committed := 3
	var failed []int64
	for ts := int64(4); len(failed) < 3; ts++ { // until a rotation fails, then twice more
		app := db.Appender(context.Background())
		for i := 0; i < 20; i++ {
			_, err := app.Append(0, series(i), ts, 1)
			require.NoError(t, err)
		}
		if err := app.Commit(); err != nil {
			require.ErrorIs(t, err, syscall.EIO)
			if len(failed) == 0 {
				require.ErrorIs(t, err, wal.ErrBroken)
				// No new segment can be started for a while either.
				ffs.Add(faultfs.Rule{Op: faultfs.OpCreate, Err: syscall.EIO})
			}
			failed = append(failed, ts)
			continue
		}
		require.Empty(t, failed, "no commit succeeds while the writer is broken")
		committed++
	}
	ffs.Clear()
	broken := db.w.Segment()
	fill(t, db, 5, 1000)
	committed += 5
	require.Equal(t, 1.0, testutil.ToFloat64(db.metrics.writerRecoveries))
	require.Equal(t, float64(len(failed)), testutil.ToFloat64(db.metrics.commitsFailed))
	require.NoError(t, db.Close())

	c := readLog(t, wal.OS, db.WALDir())
	require.Len(t, c.samples, committed*20, "every commit that succeeded, none that failed")
	for _, s := range c.samples {
		require.NotContains(t, failed, s.T)
	}
	require.Len(t, readUpstream(t, db.WALDir()).samples, committed*20)
	// From the new segment on, every series' record comes before its samples.
	segs, err := wal.SegmentRange{Dir: db.WALDir(), First: broken + 1, Last: math.MaxInt}.Resolve(wal.OS)
	require.NoError(t, err)
	r := wal.NewReader(wal.OS, db.WALDir(), segs, 0)
	defer r.Close()
	var dec record.Decoder
	known := map[record.Ref]bool{}
	n := 0
	for r.Next() {
		switch dec.TypeOf(r.Record()) {
		case record.Series:
			ss, err := dec.Series(r.Record(), nil)
			require.NoError(t, err)
			for _, s := range ss {
				known[s.Ref] = true
			}
		case record.Samples:
			ss, err := dec.Samples(r.Record(), nil)
			require.NoError(t, err)
			for _, s := range ss {
				require.True(t, known[s.Ref], "sample of series %d before its record", s.Ref)
				n++
			}
		}
	}
	require.NoError(t, r.Err())
	require.Equal(t, 5*20, n)
}
