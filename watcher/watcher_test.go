package watcher_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/watcher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTailsLiveLog: the writer appends across several segment rotations
// while the watcher tails; every sample arrives exactly once, with its series known.
func TestTailsLiveLog(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 50, wal.PageSize)
	rec := newRecorder(0)
	w, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test"})

	const scrapes = 2000
	for i := 0; i < scrapes; i++ {
		lw.scrape()
		if i%10 == 0 {
			w.Notify()
		}
	}
	w.Notify()
	testkit.Eventually(t, func() bool { return rec.count() == 50*scrapes }, "all samples arrive")
	lw.close()
	require.NoError(t, stop())
	requireEverySampleOnce(t, rec.received(), 50, 0, scrapes)
	require.Len(t, rec.series, 50)
	segs, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	require.Greater(t, len(segs), 3, "the test must cross segments")
}

// TestBackpressure: a consumer that is full stops the watcher, which
// resends the refused rest of a record once there is room; nothing is lost
// or duplicated, and it never holds more than its capacity.
func TestBackpressure(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 100, 4*wal.PageSize)
	for i := 0; i < 200; i++ {
		lw.scrape()
	}
	lw.close()

	rec := newRecorder(250)
	_, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test"})
	for rec.count() < 100*200 {
		testkit.Eventually(t, func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return rec.pendingCount() == 250 || len(rec.samples) == 100*200
		}, "the consumer fills up")
		rec.ackAll()
	}
	require.NoError(t, stop())
	requireEverySampleOnce(t, rec.received(), 100, 0, 200)
	require.Greater(t, rec.refused, 50, "the consumer must have been full often")
}

// TestFromNow sends only samples written after the start, as upstream does.
func TestFromNow(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 10, 4*wal.PageSize)
	for i := 0; i < 50; i++ {
		lw.scrape() // timestamps 0..49s after the epoch: before "now"
	}
	rec := newRecorder(0)
	now := time.Unix(49, 500e6)
	w, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Start: watcher.FromNow, Now: func() time.Time { return now }})
	for i := 0; i < 20; i++ {
		lw.scrape() // 50s.. : after "now"
	}
	w.Notify()
	testkit.Eventually(t, func() bool { return rec.count() == 10*20 }, "new samples arrive")
	lw.close()
	require.NoError(t, stop())
	requireEverySampleOnce(t, rec.received(), 10, 50, 70)
	require.Len(t, rec.series, 10, "series written before the start are known")
}

// TestStopAtEnd: with StopAtEnd, Run hands over the whole log, torn tail of
// the last segment excluded, and returns ErrReachedEnd instead of waiting.
func TestStopAtEnd(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 20, wal.PageSize)
	for i := 0; i < 300; i++ {
		lw.scrape()
	}
	lw.close()

	rec := newRecorder(0)
	w, err := watcher.New(rec, watcher.Options{Dir: dir, Name: "test", StopAtEnd: true})
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(t.Context()), watcher.ErrReachedEnd)
	requireEverySampleOnce(t, rec.received(), 20, 0, 300)

	empty := t.TempDir()
	w, err = watcher.New(rec, watcher.Options{Dir: empty, Name: "test", StopAtEnd: true})
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(t.Context()), watcher.ErrReachedEnd, "an empty log has nothing to hand over")
}
