package wal_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// TestLiveReaderResetAndPositions follows a log across segments with one
// LiveReader, and starts a second one at a position the first reported: it
// continues with exactly the next record.
func TestLiveReaderResetAndPositions(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{SegmentSize: 2 * wal.PageSize})
	require.NoError(t, err)
	var want [][]byte
	for i := 0; i < 20; i++ {
		rec := bytes.Repeat([]byte{byte(i)}, 3000*(i%5+1))
		want = append(want, rec)
		require.NoError(t, w.Log(rec))
	}
	require.NoError(t, w.Close())
	segs, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	require.Greater(t, len(segs), 2)

	var got [][]byte
	var positions, starts []record.Position
	var r *wal.LiveReader
	for _, s := range segs {
		f, err := os.Open(wal.SegmentPath(dir, s.Index))
		require.NoError(t, err)
		if r == nil {
			r = wal.NewLiveReader(f, s.Index, 0)
		} else {
			r.Reset(f, s.Index, 0)
		}
		for r.Next() {
			got = append(got, bytes.Clone(r.Record()))
			positions = append(positions, r.Position())
			starts = append(starts, r.RecordStart())
			require.Equal(t, s.Index, r.RecordStart().Segment)
		}
		require.ErrorIs(t, r.Err(), io.EOF)
		require.NoError(t, f.Close())
	}
	requireSameRecords(t, want, got)

	// Resume after a record whose successor is in the same segment.
	i := 0
	for starts[i+1].Segment != positions[i].Segment {
		i++
	}
	pos := positions[i]
	f, err := os.Open(wal.SegmentPath(dir, pos.Segment))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Seek(pos.Offset, io.SeekStart)
	require.NoError(t, err)
	r2 := wal.NewLiveReader(f, pos.Segment, pos.Offset)
	require.True(t, r2.Next(), "err: %v", r2.Err())
	require.Equal(t, want[i+1], r2.Record())
	require.Equal(t, starts[i+1], r2.RecordStart())

	// The closed Reader started at the same position agrees.
	rest, err := wal.SegmentRange{Dir: dir, First: pos.Segment, Last: -1}.Resolve(wal.OS)
	require.NoError(t, err)
	cr := wal.NewReader(wal.OS, dir, rest, pos.Offset)
	defer cr.Close()
	var tail [][]byte
	for cr.Next() {
		tail = append(tail, bytes.Clone(cr.Record()))
	}
	require.NoError(t, cr.Err())
	requireSameRecords(t, want[i+1:], tail)
}
