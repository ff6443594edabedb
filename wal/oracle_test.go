package wal_test

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
)

var compressions = []wal.Compression{wal.None, wal.Snappy, wal.Zstd}

func upstreamCompression(c wal.Compression) compression.Type {
	switch c {
	case wal.Snappy:
		return compression.Snappy
	case wal.Zstd:
		return compression.Zstd
	}
	return compression.None
}

// randomBatches returns batches of records of every interesting size: empty,
// small, about a page, several pages; half compressible, half random.
func randomBatches(rng *rand.Rand, n, maxLen int) [][][]byte {
	sizes := []int{0, 1, 6, 7, 100, wal.MaxFragmentPayload - 1, wal.MaxFragmentPayload, wal.MaxFragmentPayload + 1, wal.PageSize, 2*wal.PageSize + 17}
	var batches [][][]byte
	for len(batches) < n {
		batch := make([][]byte, 1+rng.Intn(4))
		for i := range batch {
			var size int
			if rng.Intn(3) == 0 {
				size = sizes[rng.Intn(len(sizes))]
			} else {
				size = rng.Intn(maxLen)
			}
			rec := make([]byte, size)
			if rng.Intn(2) == 0 {
				rng.Read(rec)
			} else {
				for j := range rec {
					rec[j] = byte(j / 64 % 7)
				}
			}
			batch[i] = rec
		}
		batches = append(batches, batch)
	}
	return batches
}

func flatten(batches [][][]byte) [][]byte {
	var all [][]byte
	for _, b := range batches {
		all = append(all, b...)
	}
	return all
}

func readUpstream(t *testing.T, dir string) [][]byte {
	t.Helper()
	sr, err := wlog.NewSegmentsReader(dir)
	require.NoError(t, err)
	defer sr.Close()
	r := wlog.NewReader(sr)
	var recs [][]byte
	for r.Next() {
		recs = append(recs, bytes.Clone(r.Record()))
	}
	require.NoError(t, r.Err())
	return recs
}

func readOurs(t *testing.T, dir string) [][]byte {
	t.Helper()
	r, err := wal.OpenReader(wal.OS, dir)
	require.NoError(t, err)
	defer r.Close()
	var recs [][]byte
	for r.Next() {
		recs = append(recs, bytes.Clone(r.Record()))
	}
	require.NoError(t, r.Err())
	return recs
}

func requireSameRecords(t *testing.T, want, got [][]byte) {
	t.Helper()
	require.Equal(t, len(want), len(got), "record count")
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			t.Fatalf("record %d differs: want %d bytes, got %d bytes", i, len(want[i]), len(got[i]))
		}
	}
}

const testSegmentSize = 8 * wal.PageSize

// TestOracleUpstreamWritesWeRead writes logs with upstream's writer and reads
// them with our Reader: the records must be identical.
func TestOracleUpstreamWritesWeRead(t *testing.T) {
	for _, c := range compressions {
		t.Run(string(c), func(t *testing.T) {
			rng := rand.New(rand.NewSource(1))
			batches := randomBatches(rng, 300, 3*wal.PageSize)
			dir := t.TempDir()
			w, err := wlog.NewSize(nil, nil, dir, testSegmentSize, upstreamCompression(c))
			require.NoError(t, err)
			for _, b := range batches {
				require.NoError(t, w.Log(b...))
			}
			require.NoError(t, w.Close())
			requireSameRecords(t, flatten(batches), readOurs(t, dir))
		})
	}
}

// TestOracleWeWriteUpstreamReads writes with our Writer: upstream's reader must
// return the same records, and the files must be byte-identical to what
// upstream's writer makes of the same calls.
func TestOracleWeWriteUpstreamReads(t *testing.T) {
	for _, c := range compressions {
		t.Run(string(c), func(t *testing.T) {
			rng := rand.New(rand.NewSource(2))
			batches := randomBatches(rng, 300, 3*wal.PageSize)

			ours := t.TempDir()
			w, err := wal.Open(ours, wal.Options{SegmentSize: testSegmentSize, Compression: c})
			require.NoError(t, err)
			for _, b := range batches {
				require.NoError(t, w.Log(b...))
			}
			require.NoError(t, w.Close())
			requireSameRecords(t, flatten(batches), readUpstream(t, ours))

			theirs := t.TempDir()
			uw, err := wlog.NewSize(nil, nil, theirs, testSegmentSize, upstreamCompression(c))
			require.NoError(t, err)
			for _, b := range batches {
				require.NoError(t, uw.Log(b...))
			}
			require.NoError(t, uw.Close())
			requireSameFiles(t, theirs, ours)
		})
	}
}

func requireSameFiles(t *testing.T, want, got string) {
	t.Helper()
	wantSegs, err := wal.ListSegments(wal.OS, want)
	require.NoError(t, err)
	gotSegs, err := wal.ListSegments(wal.OS, got)
	require.NoError(t, err)
	require.Equal(t, wantSegs, gotSegs)
	for _, s := range wantSegs {
		a, err := os.ReadFile(filepath.Join(want, s.Name))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(got, s.Name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(a, b), "segment %s differs (%d vs %d bytes)", s.Name, len(a), len(b))
	}
}
