package wal_test

import (
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// A Reader told OnlyTypes returns exactly the records of those types, at
// the same positions, as a Reader that returns all, for logs written with
// each compression by upstream; the snappy records it passes over are not
// decompressed.
func TestReaderOnlyTypes(t *testing.T) {
	for _, fixture := range []string{"none", "snappy", "zstd"} {
		t.Run(fixture, func(t *testing.T) {
			dir := "../testdata/wal/" + fixture
			type rec struct {
				start record.Position
				body  string
			}
			read := func(only bool) (out []rec) {
				r, err := wal.OpenReader(wal.OS, dir)
				require.NoError(t, err)
				defer r.Close()
				if only {
					r.OnlyTypes(record.Series, record.Metadata)
				}
				var dec record.Decoder
				for r.Next() {
					if typ := dec.TypeOf(r.Record()); only || typ == record.Series || typ == record.Metadata {
						out = append(out, rec{r.RecordStart(), string(r.Record())})
					}
				}
				require.NoError(t, r.Err())
				return out
			}
			want := read(false)
			require.NotEmpty(t, want)
			require.Equal(t, want, read(true))
		})
	}
}

// The type of a snappy record is read from its compressed form whatever
// the length of its first literal.
func TestReaderOnlyTypesSnappyLiterals(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{Compression: wal.Snappy})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 2))
	var want [][]byte
	for i := range 300 {
		n := []int{1, 2, 59, 60, 61, 255, 256, 257, 65535, 65536, 70000}[i%11] + r.IntN(3)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		b[0] = byte(record.Samples)
		if i%3 == 0 {
			b[0] = byte(record.Series)
			want = append(want, b)
		}
		require.NotEmpty(t, snappy.Encode(nil, b))
		require.NoError(t, w.Log(b))
	}
	require.NoError(t, w.Close())
	rd, err := wal.OpenReader(wal.OS, dir)
	require.NoError(t, err)
	defer rd.Close()
	rd.OnlyTypes(record.Series)
	var got [][]byte
	for rd.Next() {
		got = append(got, append([]byte(nil), rd.Record()...))
	}
	require.NoError(t, rd.Err())
	require.Equal(t, want, got)
}
