package watcher_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// readable returns the samples our closed Reader can read from dir,
// passing over damage (Resync): what the watcher must deliver.
func readable(t *testing.T, dir string) []record.RefSample {
	t.Helper()
	return readSamples(t, dir, (*wal.Reader).Resync)
}

// readSamples reads the samples of dir with our Reader, calling next
// after an error to go on.
func readSamples(t *testing.T, dir string, next func(*wal.Reader) bool) []record.RefSample {
	t.Helper()
	r, err := wal.OpenReader(wal.OS, dir)
	require.NoError(t, err)
	defer r.Close()
	var dec record.Decoder
	var all []record.RefSample
	for {
		for r.Next() {
			if typ := dec.TypeOf(r.Record()); typ == record.Samples || typ == record.SamplesV2 {
				all, err = dec.Samples(r.Record(), all)
				require.NoError(t, err)
			}
		}
		if r.Err() == nil || !next(r) {
			return all
		}
	}
}

// firstDamage is where our closed Reader finds the first damage in dir,
// if anywhere, and where it reads on after Resync: resumed is the start
// of the next record in the same segment, -1 if there is none.
type firstDamage struct {
	found   bool
	err     *wal.CorruptionError
	resumed int64
}

func findDamage(t *testing.T, dir string) firstDamage {
	t.Helper()
	r, err := wal.OpenReader(wal.OS, dir)
	require.NoError(t, err)
	defer r.Close()
	for r.Next() {
	}
	d := firstDamage{resumed: -1}
	if d.found = errors.As(r.Err(), &d.err); !d.found {
		return d
	}
	if r.Resync() && r.Next() && r.Segment() == d.err.Segment {
		d.resumed = r.RecordStart().Offset
	}
	return d
}

func requireSameSamples(t *testing.T, want, got []record.RefSample) {
	t.Helper()
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Equal(t, want[i], got[i], "sample %d", i)
	}
}

// TestDamagedSegmentPassedOver: a damaged byte in the middle of a closed
// segment. The watcher delivers everything before it, everything after
// the next intact record of that segment and everything of the later
// segments, and counts the bytes passed over.
func TestDamagedSegmentPassedOver(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 20, 4*wal.PageSize)
	for i := 0; i < 2000; i++ {
		lw.scrape()
	}
	lw.close()
	require.Greater(t, lastSegment(t, dir), 2)
	path := wal.SegmentPath(dir, 1)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[wal.PageSize+wal.PageSize/2] ^= 0xff // in the second of four pages
	require.NoError(t, os.WriteFile(path, data, 0o666))

	d := findDamage(t, dir)
	require.True(t, d.found)
	require.Equal(t, 1, d.err.Segment)
	require.Greater(t, d.resumed, d.err.Offset, "an intact record after the damage")
	want := readable(t, dir)
	rest := readSamples(t, dir, (*wal.Reader).SkipSegment)
	require.Greater(t, len(want), len(rest), "more than the segments after the damaged one")

	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	_, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Metrics: watcher.NewMetrics(reg)})
	testkit.Eventually(t, func() bool { return rec.count() == len(want) }, "everything readable arrives")
	require.NoError(t, stop())
	requireSameSamples(t, want, rec.received())
	require.Equal(t, 1.0, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"))
	require.Equal(t, float64(d.resumed-d.err.Offset), testkit.Metric(t, reg, "walship_wal_watcher_skipped_bytes_total"))
	require.Less(t, d.resumed-d.err.Offset, int64(2*wal.PageSize), "at most the damaged record and the rest of its page")
}

// TestTornTailOfLiveSegmentIsWaitedFor: the newest segment ends in half a
// record; the watcher waits, and delivers it once the rest is written.
func TestTornTailOfLiveSegmentIsWaitedFor(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 2000, 64*wal.PageSize) // records of several pages
	lw.scrape()
	cut := int(lw.w.Position().Offset) + 1000 // inside the second scrape's record
	lw.scrape()
	lw.close()
	path := wal.SegmentPath(dir, 0)
	full, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, full[:cut], 0o666))

	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	w, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Metrics: watcher.NewMetrics(reg)})
	testkit.Eventually(t, func() bool { return rec.count() == 2000 }, "the first scrape arrives")

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(full[cut:])
	require.NoError(t, err)
	require.NoError(t, f.Close())
	w.Notify()
	testkit.Eventually(t, func() bool { return rec.count() == 4000 }, "the second arrives once complete")
	require.NoError(t, stop())
	requireEverySampleOnce(t, rec.received(), 2000, 0, 2)
	require.Zero(t, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"))
}

// TestGapAfterTruncation: the saved position is in segments deleted while
// walship was down. The watcher starts at the oldest segment left, reports
// the segments skipped and an estimate of their samples.
func TestGapAfterTruncation(t *testing.T) {
	dir := t.TempDir()
	store := watcher.NewFilePositions(nil, filepath.Join(t.TempDir(), "pos.json"))
	lw := newLogWriter(t, dir, 20, wal.PageSize)
	for i := 0; i < 1000; i++ {
		lw.scrape()
	}
	lw.close()
	require.NoError(t, store.Save(record.Position{Segment: 0, Offset: 100}))
	segs, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	require.Greater(t, len(segs), 5)
	for _, s := range segs[:3] {
		require.NoError(t, os.Remove(wal.SegmentPath(dir, s.Index)))
	}
	want := readable(t, dir)

	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	_, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Positions: store, Metrics: watcher.NewMetrics(reg)})
	testkit.Eventually(t, func() bool { return rec.count() == len(want) }, "what is left arrives")
	testkit.Eventually(t, func() bool { return testkit.Metric(t, reg, "walship_wal_watcher_gap_samples_estimated_total") > 0 }, "loss estimated")
	require.NoError(t, stop())
	requireSameSamples(t, want, rec.received())
	require.Equal(t, 3.0, testkit.Metric(t, reg, "walship_wal_watcher_gap_segments_total"))
	// Segment 3 holds about as many samples as each deleted one.
	perSegment := float64(len(readSegment(t, dir, 3)))
	require.Equal(t, 3*perSegment, testkit.Metric(t, reg, "walship_wal_watcher_gap_samples_estimated_total"))
}

func readSegment(t *testing.T, dir string, i int) []record.RefSample {
	data, err := os.ReadFile(wal.SegmentPath(dir, i))
	require.NoError(t, err)
	lr := wal.NewLiveReader(bytes.NewReader(data), i, 0)
	var dec record.Decoder
	var out []record.RefSample
	for lr.Next() {
		if typ := dec.TypeOf(lr.Record()); typ == record.Samples || typ == record.SamplesV2 {
			out, err = dec.Samples(lr.Record(), out)
			require.NoError(t, err)
		}
	}
	return out
}

// TestTruncatedWhileBehind: the consumer is stuck while the writer's
// truncation deletes segments the watcher has not reached. The watcher
// finishes the segment it holds open, reports the gap and goes on.
func TestTruncatedWhileBehind(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 20, wal.PageSize)
	for i := 0; i < 1000; i++ {
		lw.scrape()
	}
	lw.close()
	reg := prometheus.NewRegistry()
	rec := newRecorder(100)
	_, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Metrics: watcher.NewMetrics(reg)})
	testkit.Eventually(t, func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.pendingCount() == 100 }, "stuck in segment 0")
	for _, i := range []int{1, 2, 3} {
		require.NoError(t, os.Remove(wal.SegmentPath(dir, i)))
	}
	want := readable(t, dir) // segment 0, then 4 and later
	rec.mu.Lock()
	rec.capacity = 0
	rec.mu.Unlock()
	rec.ackAll()
	testkit.Eventually(t, func() bool { return rec.count() == len(want) }, "segment 0 and what is left after the gap arrive")
	require.NoError(t, stop())
	requireSameSamples(t, want, rec.received())
	require.Equal(t, 3.0, testkit.Metric(t, reg, "walship_wal_watcher_gap_segments_total"))
}

// TestDamageInLiveSegmentPassedOver: damage in the segment still being
// written. The watcher reads on at the next intact record without waiting
// for the writer to move on, and follows what the writer appends after it.
func TestDamageInLiveSegmentPassedOver(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 20, 64*wal.PageSize)
	for i := 0; i < 400; i++ { // about three pages
		lw.scrape()
	}
	path := wal.SegmentPath(dir, 0)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xde, 0xad}, wal.PageSize/2) // in the first page
	require.NoError(t, err)
	require.NoError(t, f.Close())
	d := findDamage(t, dir)
	require.True(t, d.found)
	require.Equal(t, 0, d.err.Segment)
	require.Equal(t, int64(wal.PageSize), d.resumed-d.resumed%wal.PageSize, "reading goes on in the second page")

	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	w, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Metrics: watcher.NewMetrics(reg)})
	want := readable(t, dir)
	testkit.Eventually(t, func() bool { return rec.count() == len(want) }, "what follows the damage arrives")
	require.Equal(t, float64(d.resumed-d.err.Offset), testkit.Metric(t, reg, "walship_wal_watcher_skipped_bytes_total"))

	for i := 0; i < 100; i++ {
		lw.scrape()
	}
	w.Notify()
	want = readable(t, dir)
	testkit.Eventually(t, func() bool { return rec.count() == len(want) }, "what the writer appends after it arrives")
	lw.close()
	require.NoError(t, stop())
	requireSameSamples(t, want, rec.received())
	require.Equal(t, 1.0, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"))
	require.Equal(t, float64(d.resumed-d.err.Offset), testkit.Metric(t, reg, "walship_wal_watcher_skipped_bytes_total"))
}

// TestGarbageAppendedToLiveSegment: while the watcher tails the segment
// being written, 2 MiB of random bytes are appended to it, page by page.
// The watcher passes them over as they come, and when the next segment
// appears it counts them and ships that segment's records.
func TestGarbageAppendedToLiveSegment(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 20, 256*wal.PageSize)
	for i := 0; i < 100; i++ {
		lw.scrape()
	}
	lw.close() // segment 0 stays the newest: its last page padded
	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	w, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Metrics: watcher.NewMetrics(reg)})
	testkit.Eventually(t, func() bool { return rec.count() == 2000 }, "the records arrive")

	f, err := os.OpenFile(wal.SegmentPath(dir, 0), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 7))
	page := make([]byte, wal.PageSize)
	for p := 0; p < 64; p++ {
		for i := range page {
			page[i] = byte(rng.Uint32())
		}
		_, err := f.Write(page)
		require.NoError(t, err)
		w.Notify()
	}
	require.NoError(t, f.Close())
	testkit.Eventually(t, func() bool {
		return testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total") == 1
	}, "the garbage is found")

	next := newLogWriter(t, dir, 20, 256*wal.PageSize) // segment 1
	for i := 0; i < 100; i++ {
		next.scrape()
	}
	next.close()
	w.Notify()
	testkit.Eventually(t, func() bool { return rec.count() == 4000 }, "the next segment's records arrive")
	require.NoError(t, stop())
	require.Equal(t, 1.0, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"))
	require.Equal(t, float64(64*wal.PageSize), testkit.Metric(t, reg, "walship_wal_watcher_skipped_bytes_total"))
}

// TestRewrittenTailIsNotDamage: the watcher has read the first bytes of a
// write that then failed, and the writer writes other records over them
// (as wal.Writer.Log's rollback does after ENOSPC). Reading them again
// from the last good record finds no damage, and every record arrives.
func TestRewrittenTailIsNotDamage(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 20, 64*wal.PageSize)
	for i := 0; i < 50; i++ {
		lw.scrape()
	}
	// The start of a fragment that was never finished: a header that
	// claims 3,000 bytes, and 500 of them.
	f, err := os.OpenFile(wal.SegmentPath(dir, 0), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	partial := append([]byte{1, 0x0b, 0xb8, 1, 2, 3, 4}, bytes.Repeat([]byte{0xaa}, 500)...)
	_, err = f.Write(partial)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	w, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Metrics: watcher.NewMetrics(reg)})
	// Having read everything before it, the reader holds the partial
	// fragment and waits for the rest.
	testkit.Eventually(t, func() bool { return rec.count() == 50*20 }, "the first records arrive")
	for i := 0; i < 50; i++ { // written over the partial fragment, from the writer's own offset
		lw.scrape()
	}
	lw.close()
	w.Notify()
	testkit.Eventually(t, func() bool { return rec.count() == 100*20 }, "the records written over it arrive")
	require.NoError(t, stop())
	requireEverySampleOnce(t, rec.received(), 20, 0, 100)
	require.Zero(t, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"))
}

// TestCommittedBoundsReading: with Options.Committed, a whole record the
// writer wrote but did not commit (its write failed and is written over)
// is never read: its samples do not arrive, and neither does damage; the
// records written over it do.
func TestCommittedBoundsReading(t *testing.T) {
	dir := t.TempDir()
	lw := newLogWriter(t, dir, 20, 64*wal.PageSize)
	for i := 0; i < 50; i++ {
		lw.scrape()
	}
	var committed atomic.Pointer[record.Position]
	at := lw.w.Position()
	committed.Store(&at)
	// A whole samples record after it, as a failed commit leaves one.
	phantom := make([]record.RefSample, 20)
	for i := range phantom {
		phantom[i] = record.RefSample{Ref: record.Ref(i + 1), T: 999_999, V: 1}
	}
	payload := lw.enc.Samples(nil, phantom)
	frag := []byte{1, byte(len(payload) >> 8), byte(len(payload)), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(frag[3:], crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	f, err := os.OpenFile(wal.SegmentPath(dir, 0), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(append(frag, payload...))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	reg := prometheus.NewRegistry()
	rec := newRecorder(0)
	w, stop := run(t, rec, watcher.Options{Dir: dir, Name: "test", Metrics: watcher.NewMetrics(reg), Committed: func() record.Position { return *committed.Load() }})
	testkit.Eventually(t, func() bool { return rec.count() == 50*20 }, "the committed records arrive")
	for i := 0; i < 50; i++ { // written over the uncommitted record
		lw.scrape()
	}
	end := lw.w.Position() // a variable of its own: the watcher reads the first
	committed.Store(&end)
	w.Notify()
	testkit.Eventually(t, func() bool { return rec.count() == 100*20 }, "the records committed over it arrive")
	lw.close()
	require.NoError(t, stop())
	requireEverySampleOnce(t, rec.received(), 20, 0, 100)
	require.Zero(t, testkit.Metric(t, reg, "walship_wal_watcher_corruptions_total"))
}
