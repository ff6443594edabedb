package watcher_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// TestRestartCleanly: a watcher stopped with everything acknowledged saves
// its position; the next one sends exactly what was written since.
func TestRestartCleanly(t *testing.T) {
	dir := t.TempDir()
	store := watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "pos.json"))
	lw := newLogWriter(t, dir, 20, wal.PageSize)
	for i := 0; i < 300; i++ {
		lw.scrape()
	}
	first := newRecorder(0)
	_, stop := run(t, first, watcher.Options{Dir: dir, Name: "test", Positions: store})
	testkit.Eventually(t, func() bool { return first.count() == 20*300 }, "first run reads everything")
	require.NoError(t, stop())

	pos, ok, err := store.Load()
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, lw.w.Position(), pos, "saved position is the end of the last record")

	for i := 0; i < 100; i++ {
		lw.scrape()
	}
	lw.close()
	second := newRecorder(0)
	_, stop = run(t, second, watcher.Options{Dir: dir, Name: "test", Positions: store})
	testkit.Eventually(t, func() bool { return second.count() >= 20*100 }, "second run reads the rest")
	require.NoError(t, stop())
	requireEverySampleOnce(t, second.received(), 20, 300, 400)
	require.Len(t, second.series, 20, "series written before the position are replayed")
}

// TestRestartWithPending: stopped while the endpoint had not acknowledged
// everything, the watcher saves the start of the oldest unacknowledged
// record. The next run resends from there: no sample is lost, and the
// samples sent twice are at most the consumer's unacknowledged capacity
// plus one record.
func TestRestartWithPending(t *testing.T) {
	dir := t.TempDir()
	store := watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "pos.json"))
	lw := newLogWriter(t, dir, 20, wal.PageSize)
	for i := 0; i < 300; i++ {
		lw.scrape()
	}
	lw.close()

	const capacity = 150
	first := newRecorder(capacity)
	_, stop := run(t, first, watcher.Options{Dir: dir, Name: "test", Positions: store})
	for i := 0; i < 10; i++ { // let ten batches through, then stop with one pending
		testkit.Eventually(t, func() bool { first.mu.Lock(); defer first.mu.Unlock(); return first.pendingCount() == capacity }, "fills up")
		first.ackAll()
	}
	testkit.Eventually(t, func() bool { first.mu.Lock(); defer first.mu.Unlock(); return first.pendingCount() == capacity }, "fills up")
	require.NoError(t, stop())
	acked := first.received()[:first.count()-capacity]

	second := newRecorder(0)
	_, stop = run(t, second, watcher.Options{Dir: dir, Name: "test", Positions: store})
	testkit.Eventually(t, func() bool { return second.count() >= 20*300-len(acked) }, "second run sends the rest")
	require.NoError(t, stop())

	all := append(append([]record.RefSample(nil), acked...), second.received()...)
	dups := len(all) - 20*300
	require.GreaterOrEqual(t, dups, 0)
	require.LessOrEqual(t, dups, capacity+20, "duplicates bounded by what was in flight")
	requireEverySampleAtLeastOnce(t, all, 20, 0, 300)
}

// crashingStore is a PositionStore that stops persisting when crash is
// called, as if the process had been killed: the final save on stop is lost.
type crashingStore struct {
	watcher.PositionStore
	mu      sync.Mutex
	crashed bool
}

func (c *crashingStore) Save(p record.Position) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return nil
	}
	return c.PositionStore.Save(p)
}

func (c *crashingStore) crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crashed = true
}

// TestRestartAfterCrash: the watcher is abandoned without a final save. The
// next run resends what was handed over after the last periodic save and
// nothing is lost.
func TestRestartAfterCrash(t *testing.T) {
	dir := t.TempDir()
	file := watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "pos.json"))
	store := &crashingStore{PositionStore: file}
	lw := newLogWriter(t, dir, 20, wal.PageSize)
	for i := 0; i < 300; i++ {
		lw.scrape()
	}

	first := newRecorder(0)
	w, stop := run(t, first, watcher.Options{Dir: dir, Name: "test", Positions: store, SaveInterval: time.Millisecond})
	testkit.Eventually(t, func() bool { return first.count() == 20*300 }, "first run reads everything")
	// Let a periodic save happen, then crash and keep writing.
	testkit.Eventually(t, func() bool { p, ok, _ := file.Load(); return ok && p == lw.w.Position() }, "periodic save")
	store.crash()
	for i := 0; i < 50; i++ {
		lw.scrape()
	}
	w.Notify()
	testkit.Eventually(t, func() bool { return first.count() == 20*350 }, "first run reads more after the crash point")
	require.NoError(t, stop())
	lw.close()

	second := newRecorder(0)
	_, stop = run(t, second, watcher.Options{Dir: dir, Name: "test", Positions: file})
	testkit.Eventually(t, func() bool { return second.count() >= 20*50 }, "second run resends the unsaved part")
	require.NoError(t, stop())
	// Exactly the 50 scrapes after the last save are sent again.
	requireEverySampleOnce(t, second.received(), 20, 300, 350)
}

// requireEverySampleAtLeastOnce checks that got holds every sample of
// scrapes [from, to) of nSeries series.
func requireEverySampleAtLeastOnce(t *testing.T, got []record.RefSample, nSeries, from, to int) {
	t.Helper()
	seen := map[[2]int64]bool{}
	for _, s := range got {
		seen[[2]int64{int64(s.Ref), s.T}] = true
	}
	for sc := from; sc < to; sc++ {
		for i := 1; i <= nSeries; i++ {
			require.True(t, seen[[2]int64{int64(i), int64(sc) * 1000}], "series %d scrape %d lost", i, sc)
		}
	}
}

// TestRestartReplaysSeriesOfStartSegment: a series record in the segment
// of the saved position, before the position, is replayed, so the samples
// after the position have known labels.
func TestRestartReplaysSeriesOfStartSegment(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{})
	require.NoError(t, err)
	var enc record.Encoder
	require.NoError(t, w.Log(enc.Series(nil, []record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "early")}})))
	require.NoError(t, w.Log(enc.Samples(nil, []record.RefSample{{Ref: 1, T: 1, V: 1}})))
	require.NoError(t, w.Log(enc.Series(nil, []record.RefSeries{{Ref: 2, Labels: labels.FromStrings("__name__", "late")}})))
	require.NoError(t, w.Log(enc.Samples(nil, []record.RefSample{{Ref: 2, T: 2, V: 2}})))
	saved := w.Position()
	require.NoError(t, w.Log(enc.Samples(nil, []record.RefSample{{Ref: 1, T: 3, V: 3}, {Ref: 2, T: 3, V: 3}})))
	require.NoError(t, w.Close())

	store := watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "pos.json"))
	require.NoError(t, store.Save(saved))
	rec := newRecorder(0)
	_, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Positions: store})
	testkit.Eventually(t, func() bool { return rec.count() == 2 }, "the samples after the position arrive")
	require.NoError(t, stop())
	require.Equal(t, []record.RefSample{{Ref: 1, T: 3, V: 3}, {Ref: 2, T: 3, V: 3}}, rec.received())
	testkit.RequireLabels(t, labels.FromStrings("__name__", "late"), rec.series[2])
}

// TestSavedPositionPastTheEnd: a position saved for a log that was since
// deleted and started again points past its end; the watcher starts at
// the oldest segment instead of skipping everything the new log holds.
func TestSavedPositionPastTheEnd(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 10, wal.PageSize)
	for i := 0; i < 100; i++ {
		lw.scrape()
	}
	lw.close()
	pos := watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "pos.json"))
	require.NoError(t, pos.Save(record.Position{Segment: 99, Offset: 1234}))

	rec := newRecorder(0)
	w, err := watcher.New(rec, watcher.Options{Dir: dir, Name: "test", Positions: pos, StopAtEnd: true})
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(t.Context()), watcher.ErrReachedEnd)
	requireEverySampleOnce(t, rec.received(), 10, 0, 100)
}

// TestStopAt: a watcher catching up to a position another consumer saved
// hands over everything before it and nothing after, on a log still being
// written, and saves a position from which the rest follows exactly once.
func TestStopAt(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 10, wal.PageSize)
	defer lw.close()
	for i := 0; i < 60; i++ {
		lw.scrape()
	}
	ahead := watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "ahead.json"))
	w, err := watcher.New(newRecorder(0), watcher.Options{Dir: dir, Name: "ahead", Positions: ahead, StopAtEnd: true})
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(t.Context()), watcher.ErrReachedEnd)
	stop, ok, err := ahead.Load()
	require.NoError(t, err)
	require.True(t, ok)
	for i := 60; i < 100; i++ {
		lw.scrape()
	}

	behind := watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "behind.json"))
	rec := newRecorder(0)
	w, err = watcher.New(rec, watcher.Options{Dir: dir, Name: "behind", Positions: behind, StopAt: &stop})
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(t.Context()), watcher.ErrReachedEnd)
	requireEverySampleOnce(t, rec.received(), 10, 0, 60)
	caught, ok, err := behind.Load()
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, stop.Less(caught), "saved %v past %v", caught, stop)

	rec = newRecorder(0)
	w, err = watcher.New(rec, watcher.Options{Dir: dir, Name: "behind", Positions: behind, StopAtEnd: true})
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(t.Context()), watcher.ErrReachedEnd)
	requireEverySampleOnce(t, rec.received(), 10, 60, 100)
}

// unreadableStore is a PositionStore whose position cannot be loaded; it
// counts saves.
type unreadableStore struct{ saves atomic.Int32 }

func (s *unreadableStore) Load() (record.Position, bool, error) {
	return record.Position{}, false, errors.New("unreadable")
}

func (s *unreadableStore) Save(record.Position) error { s.saves.Add(1); return nil }

// TestFailedStartSavesNothing: a watcher whose start fails (here its
// position cannot be loaded) saves nothing, then or when asked after Run:
// it has no position, and saving the zero one would send the whole log
// again.
func TestFailedStartSavesNothing(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 20, wal.PageSize)
	lw.scrape()
	store := &unreadableStore{}
	w, err := watcher.New(newRecorder(0), watcher.Options{Dir: dir, Name: "test", Positions: store})
	require.NoError(t, err)
	require.Error(t, w.Run(context.Background()))
	w.SavePosition()
	require.Zero(t, store.saves.Load())
	lw.close()
}
