package wal_test

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/faultfs"
	"github.com/walship/walship/wal"
)

func randomRecord(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

// TestWriterFailedWriteLosesNothingLogged makes writes fail in the middle of
// multi-page records (ENOSPC after part of a page went out). Every record whose
// Log call succeeded must be read back, no record of a failed call may appear,
// and the log must read without corruption — upstream leaves a lone first
// fragment behind in this case (prometheus#13027).
func TestWriterFailedWriteLosesNothingLogged(t *testing.T) {
	for _, c := range compressions {
		t.Run(string(c), func(t *testing.T) {
			rng := rand.New(rand.NewSource(3))
			ffs := faultfs.New(wal.OS)
			dir := t.TempDir()
			w, err := wal.Open(dir, wal.Options{FS: ffs, SegmentSize: testSegmentSize, Compression: c})
			require.NoError(t, err)

			var logged [][]byte
			failures := 0
			for i := 0; i < 200; i++ {
				batch := [][]byte{randomRecord(rng, rng.Intn(100)), randomRecord(rng, rng.Intn(3*wal.PageSize))}
				if i%7 == 3 {
					// Fail the second page write of this call, after 100 bytes of it.
					ffs.Add(faultfs.Rule{Op: faultfs.OpWrite, Path: "0000*", After: 1, Times: 1, Partial: 100})
				}
				err := w.Log(batch...)
				ffs.Clear()
				if err != nil {
					require.ErrorIs(t, err, syscall.ENOSPC)
					failures++
					continue
				}
				logged = append(logged, batch...)
			}
			require.NoError(t, w.Close())
			require.Greater(t, failures, 10, "the test must actually fail writes")
			requireSameRecords(t, logged, readOurs(t, dir))
			requireSameRecords(t, logged, readUpstream(t, dir))
		})
	}
}

// TestWriterFailedFsyncOnRotation: a failed fsync of a finished segment is
// returned and the writer refuses further writes instead of pretending.
func TestWriterFailedFsyncOnRotation(t *testing.T) {
	ffs := faultfs.New(wal.OS)
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{FS: ffs, SegmentSize: testSegmentSize})
	require.NoError(t, err)
	require.NoError(t, w.Log([]byte("before")))
	ffs.Add(faultfs.Rule{Op: faultfs.OpSync, Err: syscall.EIO})
	_, err = w.NextSegment()
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorIs(t, err, wal.ErrBroken)
	require.ErrorIs(t, w.Log([]byte("after")), wal.ErrBroken)
	ffs.Clear()
	require.Error(t, w.Close())
	requireSameRecords(t, [][]byte{[]byte("before")}, readOurs(t, dir))
}

// TestWriterNextSegmentFailureTakenBack: a new segment whose padding
// cannot be written or whose file cannot be created leaves the active
// segment as it was and the writer usable (before, any failure of
// NextSegment broke it: an agent whose directory turned read-only refused
// every commit from its next truncation on, though its segment had room).
func TestWriterNextSegmentFailureTakenBack(t *testing.T) {
	for _, c := range []struct {
		name string
		rule faultfs.Rule
	}{
		{"padding", faultfs.Rule{Op: faultfs.OpWrite, Err: syscall.EIO}},
		{"create", faultfs.Rule{Op: faultfs.OpCreate, Err: syscall.EROFS}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ffs := faultfs.New(wal.OS)
			dir := t.TempDir()
			w, err := wal.Open(dir, wal.Options{FS: ffs, SegmentSize: testSegmentSize})
			require.NoError(t, err)
			require.NoError(t, w.Log([]byte("before")))
			ffs.Add(c.rule)
			_, err = w.NextSegment()
			require.ErrorIs(t, err, c.rule.Err)
			require.NotErrorIs(t, err, wal.ErrBroken)
			ffs.Clear()
			require.Equal(t, 0, w.Segment())
			require.NoError(t, w.Log([]byte("after")), "the writer goes on in its segment")
			next, err := w.NextSegment()
			require.NoError(t, err)
			require.Equal(t, 1, next)
			require.NoError(t, w.Log([]byte("next")))
			require.NoError(t, w.Close())
			want := [][]byte{[]byte("before"), []byte("after"), []byte("next")}
			requireSameRecords(t, want, readOurs(t, dir))
			requireSameRecords(t, want, readUpstream(t, dir))
		})
	}
}

// TestWriterRecoversAfterFailedFsync: Recover leaves the segment whose
// sync failed as it is and goes on in a new one, once creating it works;
// every record logged without error is in the log.
func TestWriterRecoversAfterFailedFsync(t *testing.T) {
	ffs := faultfs.New(wal.OS)
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{FS: ffs, SegmentSize: testSegmentSize})
	require.NoError(t, err)
	recovered, err := w.Recover()
	require.NoError(t, err)
	require.False(t, recovered, "nothing to recover from")
	require.NoError(t, w.Log([]byte("before")))
	ffs.Add(faultfs.Rule{Op: faultfs.OpSync, Err: syscall.EIO})
	_, err = w.NextSegment()
	require.ErrorIs(t, err, wal.ErrBroken)
	ffs.Add(faultfs.Rule{Op: faultfs.OpCreate})
	_, err = w.Recover()
	require.ErrorIs(t, err, syscall.ENOSPC, "no new segment yet")
	require.ErrorIs(t, w.Log([]byte("lost")), wal.ErrBroken)
	ffs.Clear()
	recovered, err = w.Recover()
	require.NoError(t, err)
	require.True(t, recovered)
	require.Equal(t, 1, w.Segment())
	require.NoError(t, w.Log([]byte("after")))
	require.NoError(t, w.Close())
	requireSameRecords(t, [][]byte{[]byte("before"), []byte("after")}, readOurs(t, dir))
	requireSameRecords(t, [][]byte{[]byte("before"), []byte("after")}, readUpstream(t, dir))
}

func TestWriterOpenStartsNewSegment(t *testing.T) {
	dir := t.TempDir()
	for want := 0; want < 3; want++ {
		w, err := wal.Open(dir, wal.Options{})
		require.NoError(t, err)
		require.Equal(t, want, w.Segment())
		require.NoError(t, w.Log([]byte{byte(want)}))
		require.NoError(t, w.Close())
	}
	requireSameRecords(t, [][]byte{{0}, {1}, {2}}, readOurs(t, dir))
}

func TestWriterTruncate(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{})
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		require.NoError(t, w.Log([]byte{byte(i)}))
		_, err := w.NextSegment()
		require.NoError(t, err)
	}
	require.NoError(t, w.Truncate(3))
	refs, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	require.Equal(t, []wal.SegmentRef{{Index: 3, Name: "00000003"}, {Index: 4, Name: "00000004"}}, refs)
	require.NoError(t, w.Close())
}

func TestWriterOptionsValidation(t *testing.T) {
	_, err := wal.Open(t.TempDir(), wal.Options{SegmentSize: wal.PageSize + 1})
	require.ErrorContains(t, err, "invalid segment size")
	_, err = wal.Open(t.TempDir(), wal.Options{Compression: "lz4"})
	require.ErrorContains(t, err, "unknown compression")
}

func TestWriterRecordLargerThanSegment(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{SegmentSize: 2 * wal.PageSize})
	require.NoError(t, err)
	big := bytes.Repeat([]byte{7}, 5*wal.PageSize)
	require.NoError(t, w.Log([]byte("small")))
	require.NoError(t, w.Log(big))
	require.NoError(t, w.Log([]byte("after")))
	require.NoError(t, w.Close())
	requireSameRecords(t, [][]byte{[]byte("small"), big, []byte("after")}, readOurs(t, dir))
	requireSameRecords(t, [][]byte{[]byte("small"), big, []byte("after")}, readUpstream(t, dir))
}

func TestRepair(t *testing.T) {
	for _, c := range compressions {
		t.Run(string(c), func(t *testing.T) {
			rng := rand.New(rand.NewSource(4))
			dir := t.TempDir()
			w, err := wal.Open(dir, wal.Options{SegmentSize: testSegmentSize, Compression: c})
			require.NoError(t, err)
			var recs [][]byte
			for i := 0; i < 100; i++ {
				r := randomRecord(rng, rng.Intn(2*wal.PageSize))
				recs = append(recs, r)
				require.NoError(t, w.Log(r))
			}
			require.NoError(t, w.Close())

			// Flip a byte in the middle of segment 1.
			path := wal.SegmentPath(dir, 1)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			data[len(data)/2+100] ^= 0xff // inside a fragment payload
			require.NoError(t, os.WriteFile(path, data, 0o666))

			r, err := wal.OpenReader(wal.OS, dir)
			require.NoError(t, err)
			var good [][]byte
			for r.Next() {
				good = append(good, bytes.Clone(r.Record()))
			}
			require.True(t, wal.IsCorruption(r.Err()), "got %v", r.Err())
			require.NoError(t, r.Close())
			requireSameRecords(t, recs[:len(good)], good)

			w, err = wal.Open(dir, wal.Options{SegmentSize: testSegmentSize, Compression: c})
			require.NoError(t, err)
			rep, err := w.Repair(r.Err())
			require.NoError(t, err)
			require.Equal(t, 1, rep.Segment)
			require.NotEmpty(t, rep.SegmentsDeleted)
			require.Positive(t, rep.BytesDropped)
			broken, err := os.ReadFile(rep.BrokenFile)
			require.NoError(t, err)
			require.Equal(t, data[rep.Offset:], broken, "the cut bytes are kept")
			require.Equal(t, 2, w.Segment())

			require.NoError(t, w.Log([]byte("after repair")))
			require.NoError(t, w.Close())
			want := append(good, []byte("after repair"))
			requireSameRecords(t, want, readOurs(t, dir))
			requireSameRecords(t, want, readUpstream(t, dir))
		})
	}
}

func TestRepairRejectsOtherErrors(t *testing.T) {
	_, err := wal.Repair(wal.OS, t.TempDir(), errors.New("boom"))
	require.Error(t, err)
}

func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "checkpoint.00000001.tmp"), 0o777))
	_, err := wal.LastCheckpoint(wal.OS, dir)
	require.ErrorIs(t, err, wal.ErrNoCheckpoint)

	for _, i := range []int{3, 7} {
		cp, err := wal.CreateCheckpoint(dir, i, wal.Options{Compression: wal.Snappy})
		require.NoError(t, err)
		require.NoError(t, cp.Log([]byte("a"), bytes.Repeat([]byte("b"), 3*wal.PageSize)))
		require.NoError(t, cp.Commit())
	}
	last, err := wal.LastCheckpoint(wal.OS, dir)
	require.NoError(t, err)
	require.Equal(t, wal.CheckpointRef{Index: 7, Name: "checkpoint.00000007"}, last)
	_, err = os.Stat(filepath.Join(dir, "checkpoint.00000001.tmp"))
	require.True(t, os.IsNotExist(err), "stale temporary checkpoint removed")

	want := [][]byte{[]byte("a"), bytes.Repeat([]byte("b"), 3*wal.PageSize)}
	requireSameRecords(t, want, readOurs(t, filepath.Join(dir, last.Name)))
	requireSameRecords(t, want, readUpstream(t, filepath.Join(dir, last.Name)))

	require.NoError(t, wal.DeleteCheckpoints(wal.OS, dir, 7))
	refs, err := wal.ListCheckpoints(wal.OS, dir)
	require.NoError(t, err)
	require.Equal(t, []wal.CheckpointRef{last}, refs)

	// An aborted checkpoint leaves nothing behind.
	cp, err := wal.CreateCheckpoint(dir, 9, wal.Options{})
	require.NoError(t, err)
	cp.Abort()
	refs, err = wal.ListCheckpoints(wal.OS, dir)
	require.NoError(t, err)
	require.Equal(t, []wal.CheckpointRef{last}, refs)
}

// TestCheckpointFailedRenameKeepsOld: if the rename fails, the old checkpoint
// of the directory is still the last one and no temporary directory remains.
func TestCheckpointFailedRename(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(wal.OS)
	cp, err := wal.CreateCheckpoint(dir, 2, wal.Options{FS: ffs})
	require.NoError(t, err)
	require.NoError(t, cp.Log([]byte("x")))
	require.NoError(t, cp.Commit())

	ffs.Add(faultfs.Rule{Op: faultfs.OpRename, Err: syscall.EIO})
	cp, err = wal.CreateCheckpoint(dir, 5, wal.Options{FS: ffs})
	require.NoError(t, err)
	require.NoError(t, cp.Log([]byte("y")))
	require.ErrorIs(t, cp.Commit(), syscall.EIO)
	last, err := wal.LastCheckpoint(wal.OS, dir)
	require.NoError(t, err)
	require.Equal(t, 2, last.Index)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

// TestWriterFailedCallAcrossRotation: a call whose records started a new
// segment and then failed is taken back whole, the new segment included.
func TestWriterFailedCallAcrossRotation(t *testing.T) {
	ffs := faultfs.New(wal.OS)
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{FS: ffs, SegmentSize: 2 * wal.PageSize})
	require.NoError(t, err)
	first := bytes.Repeat([]byte{1}, wal.PageSize)
	require.NoError(t, w.Log(first))

	ffs.Add(faultfs.Rule{Op: faultfs.OpWrite, Path: "00000001", Partial: 10})
	err = w.Log([]byte("small, fits in segment 0"), bytes.Repeat([]byte{2}, wal.PageSize))
	require.ErrorIs(t, err, syscall.ENOSPC)
	ffs.Clear()
	require.Equal(t, 0, w.Segment())
	_, err = os.Stat(wal.SegmentPath(dir, 1))
	require.True(t, os.IsNotExist(err), "the segment the failed call started is gone")

	last := []byte("last")
	require.NoError(t, w.Log(last))
	require.NoError(t, w.Close())
	requireSameRecords(t, [][]byte{first, last}, readOurs(t, dir))
	requireSameRecords(t, [][]byte{first, last}, readUpstream(t, dir))
}

// TestWriterFailedSegmentCreation: when the next segment cannot be created
// (a full disk), the call fails, the active segment stays as it was, and
// writing goes on once the disk has room again.
func TestWriterFailedSegmentCreation(t *testing.T) {
	ffs := faultfs.New(wal.OS)
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{FS: ffs, SegmentSize: 2 * wal.PageSize})
	require.NoError(t, err)
	first := bytes.Repeat([]byte{1}, wal.PageSize)
	require.NoError(t, w.Log(first))

	ffs.Add(faultfs.Rule{Op: faultfs.OpCreate})
	require.ErrorIs(t, w.Log(bytes.Repeat([]byte{2}, wal.PageSize)), syscall.ENOSPC)
	ffs.Clear()
	require.Equal(t, 0, w.Segment())

	second := bytes.Repeat([]byte{3}, wal.PageSize)
	require.NoError(t, w.Log(second))
	require.Equal(t, 1, w.Segment())
	require.NoError(t, w.Close())
	requireSameRecords(t, [][]byte{first, second}, readOurs(t, dir))
	requireSameRecords(t, [][]byte{first, second}, readUpstream(t, dir))
}
