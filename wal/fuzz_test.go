package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
)

// The fuzz targets take arbitrary bytes as the content of one segment.
//
// FuzzReader compares our Reader with upstream's (the oracle). Where they
// may legitimately differ, the comparison says so:
//
//   - At the end of a segment that is not page-aligned, upstream's segment
//     reader makes up zeros to the page boundary. A fragment cut short
//     there is completed with them: upstream then reports a checksum
//     mismatch or, if the zeros happen to fit (a header cut after its
//     length, with payload length 0 and CRC 0), returns a record that was
//     never written. Ours reports ErrTornRecord. So ours is compared, on
//     the same bytes padded with zeros to the page boundary, with upstream;
//     and ours on the bytes as they are may only stop earlier, with
//     ErrTornRecord.
//   - Ours refuses header bytes no writer produces, which upstream's Reader
//     accepts: bits 5-7 set, both compression flags, a compression flag
//     that changes between the fragments of a record (upstream uses the
//     flag of the last one), type 0 with a flag bit (upstream's Reader
//     takes it for padding when zeros follow). There ours stops with
//     ErrFragmentType where upstream may go on.
//   - A snappy-flagged record with an empty payload is an empty record to
//     upstream (it does not decompress empty input); to ours it is
//     ErrDecompress, since no snappy block is empty.
//
// FuzzLiveReader feeds the same bytes to a LiveReader in chunks of random
// sizes (seeded from the input), with stops at random places where the
// source says io.EOF before it goes on. It must return exactly the records
// our Reader returns, and the same error, except that it waits (io.EOF)
// where the Reader reports ErrTornRecord.

// fzResult is what a reader made of a segment.
type fzResult struct {
	recs [][]byte
	err  error
}

// fzMaxRecords bounds the records in n bytes: every record needs a 7-byte
// header. A reader that returns more is going round in circles.
func fzMaxRecords(n int) int { return n/wal.HeaderSize + 2 }

// fzFS is a directory "mem" holding one segment, 00000000, in memory: the
// fuzz targets run many times a second, and files would cost more than the
// rest of a run.
type fzFS struct {
	data []byte
}

const fzDir = "mem"

type fzFile struct{ *bytes.Reader }

func (fzFile) Write([]byte) (int, error)        { return 0, errors.ErrUnsupported }
func (fzFile) Close() error                     { return nil }
func (fzFile) Sync() error                      { return nil }
func (fzFile) Truncate(int64) error             { return errors.ErrUnsupported }
func (fzFile) Stat() (fs.FileInfo, error)       { return nil, errors.ErrUnsupported }
func (m *fzFS) Create(string) (wal.File, error) { return nil, errors.ErrUnsupported }
func (m *fzFS) OpenAppend(string) (wal.File, error) {
	return nil, errors.ErrUnsupported
}
func (m *fzFS) MkdirAll(string) error            { return errors.ErrUnsupported }
func (m *fzFS) Remove(string) error              { return errors.ErrUnsupported }
func (m *fzFS) RemoveAll(string) error           { return errors.ErrUnsupported }
func (m *fzFS) Rename(string, string) error      { return errors.ErrUnsupported }
func (m *fzFS) SyncDir(string) error             { return errors.ErrUnsupported }
func (m *fzFS) Stat(string) (fs.FileInfo, error) { return nil, errors.ErrUnsupported }

func (m *fzFS) Open(name string) (wal.File, error) {
	if name != wal.SegmentPath(fzDir, 0) {
		return nil, fs.ErrNotExist
	}
	return fzFile{bytes.NewReader(m.data)}, nil
}

func (m *fzFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	if dir != fzDir {
		return nil, fs.ErrNotExist
	}
	return fs.ReadDir(fstest.MapFS{wal.SegmentName(0): &fstest.MapFile{Data: m.data}}, ".")
}

// fzReadOurs reads data as segment 0 with our Reader.
func fzReadOurs(t *testing.T, data []byte) fzResult {
	t.Helper()
	r, err := wal.OpenReader(&fzFS{data: data}, fzDir)
	require.NoError(t, err)
	defer r.Close()
	var res fzResult
	for r.Next() {
		res.recs = append(res.recs, bytes.Clone(r.Record()))
		require.LessOrEqual(t, len(res.recs), fzMaxRecords(len(data)), "Reader does not stop")
	}
	res.err = r.Err()
	if res.err != nil {
		var ce *wal.CorruptionError
		require.ErrorAs(t, res.err, &ce, "only corruption is possible in memory")
		require.Equal(t, 0, ce.Segment)
		require.Equal(t, fzDir, ce.Dir)
		require.NotEmpty(t, cxSentinelName(res.err), "%v wraps no sentinel", res.err)
		require.GreaterOrEqual(t, ce.Offset, int64(0))
		require.LessOrEqual(t, ce.Offset, int64(len(data)), "offset past the data")
		require.False(t, r.Next(), "Next after an error")
		require.False(t, r.SkipSegment(), "no next segment")
	}
	return res
}

// fzResync reads data with our Reader, resyncing after every error: it
// returns what plain reading returned first, then only records that begin
// after the end of the one before, and comes to the end of the data.
func fzResync(t *testing.T, data []byte, plain fzResult) {
	t.Helper()
	r, err := wal.OpenReader(&fzFS{data: data}, fzDir)
	require.NoError(t, err)
	defer r.Close()
	var recs [][]byte
	var end int64
	for resyncs := 0; ; resyncs++ {
		// Each resync passes over a page, or a record that does not decompress.
		require.LessOrEqual(t, resyncs, len(data)/wal.PageSize+fzMaxRecords(len(data)), "Resync makes no progress")
		for r.Next() {
			require.GreaterOrEqual(t, r.RecordStart().Offset, end, "a record overlapping the one before")
			end = r.Position().Offset
			recs = append(recs, bytes.Clone(r.Record()))
			require.LessOrEqual(t, len(recs), fzMaxRecords(len(data)), "Reader does not stop")
		}
		if r.Err() == nil {
			break
		}
		if resyncs == 0 {
			fzRequireSame(t, plain.recs, recs, "before the first error")
		}
		require.True(t, r.Resync(), "Resync after %v", r.Err())
	}
	require.LessOrEqual(t, end, int64(len(data)))
}

// fzReadUpstream reads data with upstream's Reader over what upstream's
// segment reader (wlog.NewSegmentsReader) makes of a directory holding data
// as its only segment: the bytes, then zeros up to the page boundary
// (TestFuzzUpstreamStream checks that on real files).
func fzReadUpstream(t *testing.T, data []byte) fzResult {
	t.Helper()
	return fzReadUpstreamFrom(t, bytes.NewReader(fzPad(data)), len(data))
}

func fzReadUpstreamFrom(t *testing.T, src io.Reader, n int) fzResult {
	t.Helper()
	r := wlog.NewReader(src)
	var res fzResult
	for r.Next() {
		res.recs = append(res.recs, bytes.Clone(r.Record()))
		require.LessOrEqual(t, len(res.recs), fzMaxRecords(n+wal.PageSize), "upstream's Reader does not stop")
	}
	res.err = r.Err()
	return res
}

// fzPad returns data with zeros up to the next page boundary.
func fzPad(data []byte) []byte {
	if n := len(data) % wal.PageSize; n != 0 {
		return append(bytes.Clone(data), make([]byte, wal.PageSize-n)...)
	}
	return data
}

func fzIsPrefix(prefix, of [][]byte) bool {
	if len(prefix) > len(of) {
		return false
	}
	for i := range prefix {
		if !bytes.Equal(prefix[i], of[i]) {
			return false
		}
	}
	return true
}

func fzRequireSame(t *testing.T, want, got [][]byte, what string) {
	t.Helper()
	if !fzIsPrefix(want, got) || len(want) != len(got) {
		t.Fatalf("%s: want %d records, got %d (first difference at %d)", what, len(want), len(got), fzFirstDiff(want, got))
	}
}

func fzFirstDiff(a, b [][]byte) int {
	for i := 0; i < min(len(a), len(b)); i++ {
		if !bytes.Equal(a[i], b[i]) {
			return i
		}
	}
	return min(len(a), len(b))
}

func fzOffset(err error) int64 {
	var ce *wal.CorruptionError
	if errors.As(err, &ce) {
		return ce.Offset
	}
	return -1
}

func FuzzReader(f *testing.F) {
	for _, s := range fzSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ours := fzReadOurs(t, data)
		fzResync(t, data, ours)
		padded := fzReadOurs(t, fzPad(data))
		up := fzReadUpstream(t, data)

		// The bytes as they are against the same bytes padded: equal, but
		// for a torn tail, which the zeros may turn into something else.
		if errors.Is(ours.err, wal.ErrTornRecord) {
			if !fzIsPrefix(ours.recs, padded.recs) {
				t.Fatalf("torn tail: the records before it (%d) are not the first ones read from the padded bytes (%d)", len(ours.recs), len(padded.recs))
			}
		} else {
			fzRequireSame(t, padded.recs, ours.recs, "as written vs padded")
			require.Equal(t, cxSentinelName(padded.err), cxSentinelName(ours.err), "as written: %v; padded: %v", ours.err, padded.err)
			require.Equal(t, fzOffset(padded.err), fzOffset(ours.err))
		}

		// Ours (padded) against upstream's (which pads).
		if fzIsPrefix(padded.recs, up.recs) && len(padded.recs) == len(up.recs) {
			if up.err != nil {
				require.Error(t, padded.err, "upstream fails (%v), ours does not", up.err)
			}
			return
		}
		switch {
		case !fzIsPrefix(padded.recs, up.recs):
			t.Fatalf("ours returns %d records, upstream %d, differing at %d (ours: %v; upstream: %v)",
				len(padded.recs), len(up.recs), fzFirstDiff(padded.recs, up.recs), padded.err, up.err)
		case errors.Is(padded.err, wal.ErrFragmentType):
			// Ours refuses a header byte upstream accepts (see above).
		case errors.Is(padded.err, wal.ErrDecompress) && strings.Contains(padded.err.Error(), "(snappy)") && len(up.recs[len(padded.recs)]) == 0:
			// An empty snappy-flagged payload (see above).
		default:
			t.Fatalf("ours stops after %d records with %v; upstream goes on to %d records (%v)",
				len(padded.recs), padded.err, len(up.recs), up.err)
		}
	})
}

// fzChunks is a segment being written: Read returns at most a random
// number of bytes, now and then none at all, and io.EOF at limit until
// limit is raised.
type fzChunks struct {
	data       []byte
	pos, limit int
	rng        *rand.Rand
	empties    int
}

func (c *fzChunks) Read(p []byte) (int, error) {
	if c.pos >= c.limit {
		return 0, io.EOF
	}
	if c.empties < 3 && c.rng.Intn(8) == 0 {
		c.empties++ // a short read with nothing in it
		return 0, nil
	}
	c.empties = 0
	sizes := []int{1, 2, wal.HeaderSize, 100, 4096, wal.PageSize}
	n := 1 + c.rng.Intn(sizes[c.rng.Intn(len(sizes))])
	n = min(n, len(p), c.limit-c.pos)
	copy(p, c.data[c.pos:c.pos+n])
	c.pos += n
	return n, nil
}

func FuzzLiveReader(f *testing.F) {
	for _, s := range fzSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		closed := fzReadOurs(t, data)

		h := fnv.New64a()
		h.Write(data)
		rng := rand.New(rand.NewSource(int64(h.Sum64())))
		var stops []int
		for i := rng.Intn(4); i > 0 && len(data) > 0; i-- {
			stops = append(stops, rng.Intn(len(data)))
		}
		stops = append(stops, len(data))
		src := &fzChunks{data: data, rng: rng}
		lr := wal.NewLiveReader(src, 0, 0)
		var got [][]byte
		calls := 0
		for _, stop := range stops {
			src.limit = max(src.limit, stop)
			for lr.Next() {
				got = append(got, bytes.Clone(lr.Record()))
				calls++
				require.LessOrEqual(t, calls, fzMaxRecords(len(data)), "LiveReader does not stop")
			}
			if lr.Err() != io.EOF {
				break
			}
		}
		// Once more: nothing new must turn up, and the error must not change.
		err := lr.Err()
		require.False(t, lr.Next(), "a record out of nowhere")
		if err == io.EOF {
			require.Equal(t, io.EOF, lr.Err())
		}

		fzRequireSame(t, closed.recs, got, "LiveReader vs Reader")
		if closed.err == nil || errors.Is(closed.err, wal.ErrTornRecord) {
			require.Equal(t, io.EOF, err, "the Reader says %v", closed.err)
			return
		}
		var ce *wal.CorruptionError
		require.ErrorAs(t, err, &ce, "the Reader says %v", closed.err)
		require.Equal(t, cxSentinelName(closed.err), cxSentinelName(err), "Reader: %v; LiveReader: %v", closed.err, err)
		require.Equal(t, fzOffset(closed.err), ce.Offset, "Reader: %v; LiveReader: %v", closed.err, err)
		require.Equal(t, 0, ce.Segment)
	})
}

// fzSeed is a seed input; small ones are also kept as seed corpus files.
type fzSeed struct {
	name string
	data []byte
	file bool
}

// fzText returns n bytes of letters, digits and spaces, which the corpus
// file format keeps as they are.
func fzText(rng *rand.Rand, n int) []byte {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     "
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rng.Intn(len(chars))]
	}
	return b
}

// fzSegment writes recs with our Writer (one Log call each) and returns the
// segment's bytes; unless closed, as they are before Close pads the page.
func fzSegment(tb testing.TB, comp wal.Compression, closed bool, recs ...[]byte) []byte {
	tb.Helper()
	dir := tb.TempDir()
	w, err := wal.Open(dir, wal.Options{SegmentSize: 64 * wal.PageSize, Compression: comp})
	require.NoError(tb, err)
	for _, r := range recs {
		require.NoError(tb, w.Log(r))
	}
	b, err := os.ReadFile(wal.SegmentPath(dir, 0))
	require.NoError(tb, err)
	require.NoError(tb, w.Close())
	if closed {
		b, err = os.ReadFile(wal.SegmentPath(dir, 0))
		require.NoError(tb, err)
	}
	return b
}

// fzSeeds returns real segments, clean and damaged.
func fzSeeds(tb testing.TB) []fzSeed {
	rng := rand.New(rand.NewSource(5))
	var small [][]byte
	for i := 0; i < 6; i++ {
		small = append(small, fzText(rng, 1+rng.Intn(60)))
	}
	small = append(small, nil) // an empty record
	repetitive := func(n int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("up{job=%q} 1 ", "node")), n)
	}
	multi := fzSegment(tb, wal.None, false, fzText(rng, 100), fzText(rng, 40_000), fzText(rng, 30))
	seeds := []fzSeed{
		{"small", fzSegment(tb, wal.None, false, small...), true},
		{"multipage", multi, true},
		{"snappy", fzSegment(tb, wal.Snappy, false, repetitive(40), fzText(rng, 50), repetitive(300)), true},
		{"zstd", fzSegment(tb, wal.Zstd, false, repetitive(40), fzText(rng, 50), repetitive(300)), true},
		{"torn", multi[:wal.PageSize+500], true},
		{"torn-header", multi[:wal.PageSize+3], true},
	}
	bad := bytes.Clone(seeds[0].data)
	bad[20] ^= 0x20
	seeds = append(seeds, fzSeed{"bad-checksum", bad, true})

	// Closed segments, f.Add only (zeros quote badly in corpus files). No
	// seed is larger than two pages: the fuzzer minimizes every new input
	// byte by byte, which takes long for large ones.
	for _, comp := range compressions {
		seeds = append(seeds, fzSeed{"closed-" + string(comp), fzSegment(tb, comp, true,
			fzText(rng, 10), repetitive(1000), fzText(rng, wal.MaxFragmentPayload-200), nil), false})
	}
	// One written by upstream's writer, with a record of two pages.
	big := make([]byte, wal.PageSize)
	rng.Read(big)
	dir := tb.TempDir()
	w, err := wlog.NewSize(nil, nil, dir, 4*wal.PageSize, upstreamCompression(wal.Snappy))
	require.NoError(tb, err)
	require.NoError(tb, w.Log(repetitive(100), fzText(rng, 300), big, fzText(rng, 20)))
	require.NoError(tb, w.Close())
	b, err := os.ReadFile(wal.SegmentPath(dir, 0))
	require.NoError(tb, err)
	seeds = append(seeds, fzSeed{"upstream-snappy", b, false})
	return seeds
}

// fzCorpusFile is a seed in the format of testdata/fuzz.
func fzCorpusFile(data []byte) []byte {
	return []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data))
}

// TestFuzzSeedFiles keeps the seed files of both fuzz targets: -update
// writes them; otherwise each must be as fzSeeds makes it and under 100 KB.
func TestFuzzSeedFiles(t *testing.T) {
	for _, target := range []string{"FuzzReader", "FuzzLiveReader"} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range fzSeeds(t) {
			if !s.file {
				continue
			}
			want := fzCorpusFile(s.data)
			require.Less(t, len(want), 100_000, "seed %s", s.name)
			path := filepath.Join(dir, s.name)
			if *update {
				require.NoError(t, os.MkdirAll(dir, 0o777))
				require.NoError(t, os.WriteFile(path, want, 0o666))
				continue
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err, "run go test ./wal -run TestFuzzSeedFiles -update")
			require.True(t, bytes.Equal(want, got), "%s is not what fzSeeds makes; run with -update", path)
		}
	}
}

// TestFuzzSeedsBehave runs the seeds' premises: the clean ones read without
// error, the damaged ones do not.
func TestFuzzSeedsBehave(t *testing.T) {
	for _, s := range fzSeeds(t) {
		res := fzReadOurs(t, s.data)
		switch s.name {
		case "torn", "torn-header":
			require.ErrorIs(t, res.err, wal.ErrTornRecord, s.name)
		case "bad-checksum":
			require.ErrorIs(t, res.err, wal.ErrChecksum, s.name)
		default:
			require.NoError(t, res.err, s.name)
			require.NotEmpty(t, res.recs, s.name)
		}
	}
}

// TestFuzzUpstreamStream checks the premise of fzReadUpstream: upstream's
// Reader over wlog.NewSegmentsReader of a directory with one segment reads
// what it reads from the segment's bytes padded with zeros to a page.
func TestFuzzUpstreamStream(t *testing.T) {
	for _, s := range fzSeeds(t) {
		for _, cut := range []int{len(s.data), len(s.data) / 3, len(s.data) - 5} {
			data := s.data[:max(cut, 0)]
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(wal.SegmentPath(dir, 0), data, 0o666))
			sr, err := wlog.NewSegmentsReader(dir)
			require.NoError(t, err)
			files := fzReadUpstreamFrom(t, sr, len(data))
			require.NoError(t, sr.Close())
			mem := fzReadUpstream(t, data)
			fzRequireSame(t, files.recs, mem.recs, s.name)
			require.Equal(t, files.err == nil, mem.err == nil, "%s: %v vs %v", s.name, files.err, mem.err)
		}
	}
}
