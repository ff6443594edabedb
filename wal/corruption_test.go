package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
)

// This file damages freshly written logs at known places and checks what
// both readers make of them. The helpers at the top (a walker over the
// fragments of a clean segment, the sentinel list) are shared with
// fixtures_test.go and fuzz_test.go.

// cxSentinels are the errors a *wal.CorruptionError may wrap, by name.
var cxSentinels = []struct {
	name string
	err  error
}{
	{"ErrChecksum", wal.ErrChecksum},
	{"ErrFragmentLength", wal.ErrFragmentLength},
	{"ErrFragmentType", wal.ErrFragmentType},
	{"ErrFragmentOrder", wal.ErrFragmentOrder},
	{"ErrPadding", wal.ErrPadding},
	{"ErrTornRecord", wal.ErrTornRecord},
	{"ErrDecompress", wal.ErrDecompress},
}

// cxSentinelName names the sentinel err wraps, or "" if none.
func cxSentinelName(err error) string {
	for _, s := range cxSentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return ""
}

var cxCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// Fragment header bytes, as the format defines them (see wal/doc.go).
const (
	cxFull   byte = 1
	cxFirst  byte = 2
	cxMiddle byte = 3
	cxLast   byte = 4
	cxSnappy byte = 0x08
	cxZstd   byte = 0x10
)

// cxFrag is one fragment of a clean segment.
type cxFrag struct {
	off    int64 // offset of the header in the segment
	hdr    byte
	length int
}

func (f cxFrag) typ() byte            { return f.hdr & 7 }
func (f cxFrag) payloadOff() int64    { return f.off + wal.HeaderSize }
func (f cxFrag) end() int64           { return f.payloadOff() + int64(f.length) }
func (f cxFrag) midPayload() int64    { return f.payloadOff() + int64(f.length/2) }
func (f cxFrag) startsPage() bool     { return f.off%wal.PageSize == 0 }
func (f cxFrag) withType(t byte) byte { return f.hdr&^7 | t }

// cxSpan is where one record lies in a clean segment.
type cxSpan struct {
	seg        int
	start, end int64 // first byte of its first fragment, byte after its last
	frags      []cxFrag
}

// cxWalk lists the records of a clean segment (one written by a writer,
// not damaged) by walking its fragments. It fails the test on anything a
// writer does not produce.
func cxWalk(tb testing.TB, seg int, data []byte) []cxSpan {
	tb.Helper()
	var spans []cxSpan
	var cur *cxSpan
	for off := int64(0); off < int64(len(data)); {
		if data[off] == 0 {
			off = min((off/wal.PageSize+1)*wal.PageSize, int64(len(data)))
			continue
		}
		require.LessOrEqual(tb, off+wal.HeaderSize, int64(len(data)), "segment %d: header at %d cut short", seg, off)
		f := cxFrag{off: off, hdr: data[off], length: int(binary.BigEndian.Uint16(data[off+1:]))}
		require.LessOrEqual(tb, f.end(), int64(len(data)), "segment %d: fragment at %d cut short", seg, off)
		require.Equal(tb, binary.BigEndian.Uint32(data[off+3:]), crc32.Checksum(data[f.payloadOff():f.end()], cxCastagnoli), "segment %d: fragment at %d", seg, off)
		switch f.typ() {
		case cxFull, cxFirst:
			require.Nil(tb, cur, "segment %d: record at %d starts inside another", seg, off)
			spans = append(spans, cxSpan{seg: seg, start: off})
			cur = &spans[len(spans)-1]
		case cxMiddle, cxLast:
			require.NotNil(tb, cur, "segment %d: fragment at %d continues no record", seg, off)
		default:
			tb.Fatalf("segment %d: header byte %#x at %d", seg, f.hdr, off)
		}
		cur.frags = append(cur.frags, f)
		off = f.end()
		if f.typ() == cxFull || f.typ() == cxLast {
			cur.end = off
			cur = nil
		}
	}
	require.Nil(tb, cur, "segment %d ends inside a record", seg)
	return spans
}

// cxLog is a clean log on disk and what is known about it.
type cxLog struct {
	dir   string
	comp  wal.Compression
	segs  []int          // segment indexes, ascending
	data  map[int][]byte // segment bytes as written; never modified
	recs  [][]byte       // the records, in order
	spans []cxSpan       // spans[i] is where recs[i] lies
}

const cxSegmentSize = 4 * wal.PageSize

// cxRecords returns records of every interesting size, about 420 KB in all:
// small ones, ones of a few pages (incompressible, so they stay multi-page
// under any compression), sizes at the page boundaries, and text that
// compresses. The last segment holds a multi-page record and two small ones.
func cxRecords(rng *rand.Rand) [][]byte {
	words := make([]string, 64)
	for i := range words {
		w := make([]byte, 3+rng.Intn(8))
		for j := range w {
			w[j] = 'a' + byte(rng.Intn(26))
		}
		words[i] = string(w)
	}
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.Intn(len(words))])
			b.WriteByte(' ')
			if rng.Intn(8) == 0 {
				b.WriteString("1234567890"[:1+rng.Intn(9)])
			}
		}
		return b.Bytes()[:n]
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		if n > 0 && b[0] == 0 {
			b[0] = 1 // no record is all zeros
		}
		return b
	}
	var recs [][]byte
	for total := 0; total < 420_000; {
		var r []byte
		switch p := rng.Intn(20); {
		case p < 9:
			r = text(1 + rng.Intn(2000))
		case p < 13:
			r = text(2000 + rng.Intn(30000))
		case p < 16:
			r = random(70_000 + rng.Intn(25_000))
		case p < 18:
			r = text(40_000 + rng.Intn(40_000))
		default:
			sizes := []int{wal.MaxFragmentPayload - 1, wal.MaxFragmentPayload, wal.MaxFragmentPayload + 1, wal.PageSize, 7}
			r = random(sizes[rng.Intn(len(sizes))])
		}
		recs = append(recs, r)
		total += len(r)
	}
	return append(recs, random(80_000), text(500), text(90))
}

// cxWriteLog writes the records of cxRecords with wal.Writer into a fresh
// directory, in batches of one to three, and walks what it wrote.
func cxWriteLog(t *testing.T, comp wal.Compression) *cxLog {
	t.Helper()
	rng := rand.New(rand.NewSource(42))
	recs := cxRecords(rng)
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{SegmentSize: cxSegmentSize, Compression: comp})
	require.NoError(t, err)
	for i := 0; i < len(recs); {
		n := min(1+rng.Intn(3), len(recs)-i)
		require.NoError(t, w.Log(recs[i:i+n]...))
		i += n
	}
	require.NoError(t, w.Close())
	l := cxLoad(t, dir, comp)
	require.Len(t, l.spans, len(recs), "records found in the segments")
	l.recs = recs
	require.GreaterOrEqual(t, len(l.segs), 4, "the log should have several segments")
	return l
}

// cxLoad reads the segments of a clean log in dir and walks them.
func cxLoad(t testing.TB, dir string, comp wal.Compression) *cxLog {
	t.Helper()
	refs, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	l := &cxLog{dir: dir, comp: comp, data: map[int][]byte{}}
	for _, s := range refs {
		b, err := os.ReadFile(filepath.Join(dir, s.Name))
		require.NoError(t, err)
		l.segs = append(l.segs, s.Index)
		l.data[s.Index] = b
		l.spans = append(l.spans, cxWalk(t, s.Index, b)...)
	}
	return l
}

// clone copies the log's segments into a new directory of t's.
func (l *cxLog) clone(t *testing.T) *cxLog {
	t.Helper()
	c := *l
	c.dir = t.TempDir()
	for _, s := range l.segs {
		require.NoError(t, os.WriteFile(wal.SegmentPath(c.dir, s), l.data[s], 0o666))
	}
	return &c
}

// recsIn returns the range [first, end) of the records in segment seg.
func (l *cxLog) recsIn(seg int) (first, end int) {
	first = -1
	for i, s := range l.spans {
		if s.seg == seg {
			if first < 0 {
				first = i
			}
			end = i + 1
		}
	}
	return max(first, 0), end
}

// midSegments are the segments with others before and after them.
func (l *cxLog) midSegments() []int { return l.segs[1 : len(l.segs)-1] }

func (l *cxLog) lastSegment() int { return l.segs[len(l.segs)-1] }

// find returns the first record in segs for which ok holds, preferring
// records in the middle of their segment (neither its first nor its last).
func (l *cxLog) find(t testing.TB, segs []int, ok func(s cxSpan) bool) int {
	t.Helper()
	for _, interior := range []bool{true, false} {
		for _, seg := range segs {
			first, end := l.recsIn(seg)
			for i := first; i < end; i++ {
				if interior && (i == first || i == end-1) {
					continue
				}
				if ok(l.spans[i]) {
					return i
				}
			}
		}
	}
	t.Fatalf("no suitable record in segments %v", segs)
	return -1
}

// mutate rewrites segment seg of the log's directory with fn applied to a
// copy of its clean bytes.
func (l *cxLog) mutate(t testing.TB, seg int, fn func(b []byte) []byte) {
	t.Helper()
	b := fn(bytes.Clone(l.data[seg]))
	require.NoError(t, os.WriteFile(wal.SegmentPath(l.dir, seg), b, 0o666))
}

// cxDamage is what a corruption did and what the readers must report.
type cxDamage struct {
	seg      int   // the damaged segment
	sentinel error // nil: the log still reads without error
	offset   int64 // CorruptionError.Offset
	good     int   // records returned before the error (index into recs)
	// torn: the segment was cut; rest is what was cut off. A LiveReader
	// waits (io.EOF) and returns everything once rest is appended.
	torn bool
	rest []byte
	// damaged is the damaged segment's content, for the LiveReaders.
	damaged []byte
}

// at says that record k is the first one lost, to an error of kind sentinel.
func (l *cxLog) at(k int, sentinel error) cxDamage {
	return cxDamage{seg: l.spans[k].seg, sentinel: sentinel, offset: l.spans[k].start, good: k}
}

func multiPage(s cxSpan) bool { return len(s.frags) >= 2 }
func hasMiddle(s cxSpan) bool { return len(s.frags) >= 3 }
func isFull(s cxSpan) bool    { return len(s.frags) == 1 && s.frags[0].length > 1 }

// setHeader replaces the header byte of fragment f.
func setHeader(f cxFrag, hdr byte) func([]byte) []byte {
	return func(b []byte) []byte { b[f.off] = hdr; return b }
}

// cxCorruption damages a clean copy of a log at a known place.
type cxCorruption struct {
	name   string
	damage func(t *testing.T, l *cxLog) cxDamage
}

var cxCorruptions = []cxCorruption{
	{"checksum/full-payload", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, func(b []byte) []byte { b[f.midPayload()] ^= 0xff; return b })
		return l.at(k, wal.ErrChecksum)
	}},
	{"checksum/middle-fragment", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), hasMiddle)
		f := l.spans[k].frags[1]
		l.mutate(t, l.spans[k].seg, func(b []byte) []byte { b[f.midPayload()] ^= 0x01; return b })
		return l.at(k, wal.ErrChecksum)
	}},
	{"checksum/crc-in-header", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), multiPage)
		s := l.spans[k]
		f := s.frags[len(s.frags)-1]
		l.mutate(t, s.seg, func(b []byte) []byte { b[f.off+4] ^= 0x10; return b })
		return l.at(k, wal.ErrChecksum)
	}},
	{"checksum/length-one-short", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[f.off+1:], uint16(f.length-1))
			return b
		})
		return l.at(k, wal.ErrChecksum)
	}},
	{"length/0xffff", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, func(b []byte) []byte { b[f.off+1], b[f.off+2] = 0xff, 0xff; return b })
		return l.at(k, wal.ErrFragmentLength)
	}},
	{"length/one-more-than-a-page-holds", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), multiPage)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[f.off+1:], wal.MaxFragmentPayload+1)
			return b
		})
		return l.at(k, wal.ErrFragmentLength)
	}},
	{"type/5", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, setHeader(f, f.withType(5)))
		return l.at(k, wal.ErrFragmentType)
	}},
	{"type/7-in-a-record", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), hasMiddle)
		f := l.spans[k].frags[1]
		l.mutate(t, l.spans[k].seg, setHeader(f, f.withType(7)))
		return l.at(k, wal.ErrFragmentType)
	}},
	{"type/unused-bit", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, setHeader(f, f.hdr|0x40))
		return l.at(k, wal.ErrFragmentType)
	}},
	{"type/both-compression-flags", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, setHeader(f, f.hdr|cxSnappy|cxZstd))
		return l.at(k, wal.ErrFragmentType)
	}},
	{"type/compression-changes-inside-a-record", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), multiPage)
		s := l.spans[k]
		f := s.frags[len(s.frags)-1]
		hdr := f.typ() | cxSnappy // a record without a flag gets one...
		if f.hdr&(cxSnappy|cxZstd) != 0 {
			hdr = f.typ() // ...and a compressed one loses it
		}
		l.mutate(t, s.seg, setHeader(f, hdr))
		return l.at(k, wal.ErrFragmentType)
	}},
	{"type/0-with-payload", func(t *testing.T, l *cxLog) cxDamage {
		// A header byte of type 0 (the page terminator's) with a flag
		// bit: the CRC still matches, since it covers only the payload.
		// No writer makes such a fragment; both upstream readers refuse
		// it (Reader: non-zero bytes in the padding, LiveReader:
		// "unexpected record type 0"), and so must we, rather than skip
		// the record silently.
		k := l.find(t, l.midSegments(), isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, setHeader(f, cxSnappy))
		return l.at(k, wal.ErrFragmentType)
	}},
	{"order/middle-without-first", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), hasMiddle)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, setHeader(f, f.withType(cxMiddle)))
		return l.at(k, wal.ErrFragmentOrder)
	}},
	{"order/last-without-first", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, l.spans[k].seg, setHeader(f, f.withType(cxLast)))
		return l.at(k, wal.ErrFragmentOrder)
	}},
	{"order/first-inside-a-record", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), hasMiddle)
		f := l.spans[k].frags[1]
		l.mutate(t, l.spans[k].seg, setHeader(f, f.withType(cxFirst)))
		return l.at(k, wal.ErrFragmentOrder)
	}},
	{"order/full-inside-a-record", func(t *testing.T, l *cxLog) cxDamage {
		k := l.find(t, l.midSegments(), multiPage)
		s := l.spans[k]
		f := s.frags[len(s.frags)-1]
		l.mutate(t, s.seg, setHeader(f, f.withType(cxFull)))
		return l.at(k, wal.ErrFragmentOrder)
	}},
	{"order/last-missing", func(t *testing.T, l *cxLog) cxDamage {
		// The record's last fragment says "middle": the error shows at
		// the next record's first fragment, but the damage is this record.
		k := l.find(t, l.midSegments(), func(s cxSpan) bool {
			_, end := l.recsIn(s.seg)
			return multiPage(s) && l.spans[end-1].start != s.start
		})
		s := l.spans[k]
		f := s.frags[len(s.frags)-1]
		l.mutate(t, s.seg, setHeader(f, f.withType(cxMiddle)))
		return l.at(k, wal.ErrFragmentOrder)
	}},
	{"padding/non-zero-byte", func(t *testing.T, l *cxLog) cxDamage {
		k, end := l.findPadding(t, 2)
		l.mutate(t, l.spans[k].seg, func(b []byte) []byte { b[end-1] = 0x01; return b })
		return cxDamage{seg: l.spans[k].seg, sentinel: wal.ErrPadding, offset: l.spans[k].end, good: k + 1}
	}},
	{"padding/terminator-with-flag", func(t *testing.T, l *cxLog) cxDamage {
		// The terminator byte itself carries a compression flag, the rest
		// of the page is zeros. Upstream's Reader takes it for padding
		// (it looks at the type bits only); its LiveReader refuses it as
		// "unexpected record type 0". We refuse every header byte a writer
		// cannot produce.
		k, _ := l.findPadding(t, wal.HeaderSize)
		l.mutate(t, l.spans[k].seg, func(b []byte) []byte { b[l.spans[k].end] = cxZstd; return b })
		return cxDamage{seg: l.spans[k].seg, sentinel: wal.ErrFragmentType, offset: l.spans[k].end, good: k + 1}
	}},
	{"page/zeroed", func(t *testing.T, l *cxLog) cxDamage {
		// A page of zeros. No writer begins a page with padding, so the
		// damage shows where the page begins. (Upstream's readers take
		// the page for padding and notice only at the next page, which
		// continues a record whose start is gone; records that lay wholly
		// in a zeroed page, such as a closed segment's last, vanish there
		// without a trace.)
		k := l.find(t, l.midSegments(), func(s cxSpan) bool {
			return s.start%wal.PageSize == 0 && multiPage(s) &&
				s.frags[1].off == s.start+wal.PageSize && s.frags[1].end() < int64(len(l.data[s.seg]))
		})
		s := l.spans[k]
		l.mutate(t, s.seg, func(b []byte) []byte { clear(b[s.start : s.start+wal.PageSize]); return b })
		return cxDamage{seg: s.seg, sentinel: wal.ErrPadding, offset: s.start, good: k}
	}},
	{"page/garbage", func(t *testing.T, l *cxLog) cxDamage {
		// Random bytes over a whole page; its first byte is made a valid
		// "full" header so the outcome depends only on the length field.
		seg := l.midSegments()[0]
		page := int64(1)
		require.Greater(t, int64(len(l.data[seg])), (page+1)*wal.PageSize)
		rng := rand.New(rand.NewSource(int64(seg)))
		var length int
		l.mutate(t, seg, func(b []byte) []byte {
			g := b[page*wal.PageSize : (page+1)*wal.PageSize]
			rng.Read(g)
			g[0] = cxFull
			length = int(binary.BigEndian.Uint16(g[1:]))
			return b
		})
		// The first record not complete before the page is the first lost.
		first, end := l.recsIn(seg)
		k := first
		for k < end && l.spans[k].end <= page*wal.PageSize {
			k++
		}
		d := l.at(k, wal.ErrChecksum)
		if length > wal.MaxFragmentPayload {
			d.sentinel = wal.ErrFragmentLength
		}
		return d
	}},
	{"decompress/invalid-data", func(t *testing.T, l *cxLog) cxDamage {
		// Valid CRC over bytes that are no snappy block and no zstd frame.
		k := l.find(t, l.midSegments(), func(s cxSpan) bool { return isFull(s) && s.frags[0].length > 16 })
		f := l.spans[k].frags[0]
		flag := cxSnappy
		if l.comp == wal.Zstd {
			flag = cxZstd
		}
		l.mutate(t, l.spans[k].seg, func(b []byte) []byte {
			p := b[f.payloadOff():f.end()]
			for i := range p {
				p[i] = 0xff
			}
			b[f.off] = f.typ() | flag
			binary.BigEndian.PutUint32(b[f.off+3:], crc32.Checksum(p, cxCastagnoli))
			return b
		})
		return l.at(k, wal.ErrDecompress)
	}},
	{"torn/inside-a-fragment", func(t *testing.T, l *cxLog) cxDamage {
		k := l.findLast(t, multiPage)
		return l.cut(t, k, l.spans[k].frags[1].midPayload())
	}},
	{"torn/inside-a-header-inside-a-record", func(t *testing.T, l *cxLog) cxDamage {
		k := l.findLast(t, multiPage)
		return l.cut(t, k, l.spans[k].frags[1].off+3)
	}},
	{"torn/at-a-page-boundary-inside-a-record", func(t *testing.T, l *cxLog) cxDamage {
		k := l.findLast(t, multiPage)
		f := l.spans[k].frags[1]
		require.True(t, f.startsPage())
		return l.cut(t, k, f.off)
	}},
	{"torn/inside-a-full-fragment-header", func(t *testing.T, l *cxLog) cxDamage {
		k := l.findLast(t, isFull)
		return l.cut(t, k, l.spans[k].start+5)
	}},
	{"torn/inside-the-first-fragment", func(t *testing.T, l *cxLog) cxDamage {
		k := l.findLast(t, multiPage)
		return l.cut(t, k, l.spans[k].frags[0].payloadOff()+1)
	}},
	{"clean/cut-inside-the-final-padding", func(t *testing.T, l *cxLog) cxDamage {
		// Not damage: a closed segment may end before its last page does.
		seg := l.lastSegment()
		_, end := l.recsIn(seg)
		last := l.spans[end-1].end
		size := int64(len(l.data[seg]))
		require.Greater(t, size-last, int64(2), "the last segment should end in padding")
		l.mutate(t, seg, func(b []byte) []byte { return b[:last+(size-last)/2] })
		return cxDamage{seg: seg, good: len(l.recs)}
	}},
}

// findPadding returns a record k in a middle segment followed by padding
// of at least minGap bytes up to the page boundary at end.
func (l *cxLog) findPadding(t testing.TB, minGap int64) (k int, end int64) {
	t.Helper()
	for _, seg := range l.midSegments() {
		first, last := l.recsIn(seg)
		for i := first; i < last; i++ {
			next := int64(len(l.data[seg]))
			if i+1 < last {
				next = l.spans[i+1].start
			}
			if gap := next - l.spans[i].end; gap >= minGap && next%wal.PageSize == 0 {
				return i, next
			}
		}
	}
	t.Fatal("no padding in the middle segments")
	return 0, 0
}

// findLast returns the last record of the last segment for which ok holds.
func (l *cxLog) findLast(t testing.TB, ok func(cxSpan) bool) int {
	t.Helper()
	first, end := l.recsIn(l.lastSegment())
	for i := end - 1; i >= first; i-- {
		if ok(l.spans[i]) {
			return i
		}
	}
	t.Fatal("no suitable record in the last segment")
	return 0
}

// cut truncates the last segment at off, inside record k.
func (l *cxLog) cut(t testing.TB, k int, off int64) cxDamage {
	t.Helper()
	seg := l.spans[k].seg
	require.Equal(t, l.lastSegment(), seg)
	l.mutate(t, seg, func(b []byte) []byte { return b[:off] })
	d := l.at(k, wal.ErrTornRecord)
	d.torn, d.rest = true, l.data[seg][off:]
	return d
}

// TestCorruption damages clean logs in every way of cxCorruptions and
// checks both readers: the error (sentinel, segment, offset), that every
// record before the damage is returned, that Reader.SkipSegment goes on
// with every record of the later segments, that Resync goes on with every
// record after the pages the damage reached (resumesAt), and that a
// LiveReader waits at a torn tail and loses nothing once the rest arrives.
func TestCorruption(t *testing.T) {
	for _, comp := range compressions {
		base := cxWriteLog(t, comp)
		for _, c := range cxCorruptions {
			t.Run(string(comp)+"/"+c.name, func(t *testing.T) {
				l := base.clone(t)
				d := c.damage(t, l)
				var err error
				d.damaged, err = os.ReadFile(wal.SegmentPath(l.dir, d.seg))
				require.NoError(t, err)
				t.Run("Reader", func(t *testing.T) { cxCheckReader(t, l, d) })
				t.Run("LiveReader/file", func(t *testing.T) { cxCheckLiveFile(t, l, d) })
				for _, sh := range cxShapes {
					t.Run("LiveReader/"+sh.name, func(t *testing.T) { cxCheckLiveShape(t, l, d, sh.wrap) })
				}
				if d.sentinel != nil && !d.torn {
					t.Run("Reader/Resync", func(t *testing.T) { cxCheckReaderResync(t, l, d) })
					for _, sh := range cxShapes {
						t.Run("LiveReader/Resync/"+sh.name, func(t *testing.T) { cxCheckLiveResync(t, l, d, sh.wrap) })
					}
				}
			})
		}
	}
}

var cxShapes = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"plain", func(r io.Reader) io.Reader { return r }},
	{"OneByteReader", iotest.OneByteReader},
	{"HalfReader", iotest.HalfReader},
	{"DataErrReader", iotest.DataErrReader},
}

func cxRequireRecords(t *testing.T, want, got [][]byte, what string) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: record count", what)
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			t.Fatalf("%s: record %d differs: want %d bytes, got %d", what, i, len(want[i]), len(got[i]))
		}
	}
}

// cxRequireCorruption checks err against d for segment seg of dir.
func cxRequireCorruption(t *testing.T, err error, d cxDamage, dir string) {
	t.Helper()
	var ce *wal.CorruptionError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, d.sentinel)
	require.Equal(t, dir, ce.Dir)
	require.Equal(t, d.seg, ce.Segment)
	require.Equal(t, d.offset, ce.Offset, "offset of the first byte not part of a good record (%v)", err)
	require.True(t, wal.IsCorruption(err))
}

// cxReadToDamage reads l with a Reader until Next stops: every record
// before the damage must come back. The Reader is closed with the test.
func cxReadToDamage(t *testing.T, l *cxLog, d cxDamage) *wal.Reader {
	r, err := wal.OpenReader(wal.OS, l.dir)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	var got [][]byte
	for r.Next() {
		got = append(got, bytes.Clone(r.Record()))
	}
	cxRequireRecords(t, l.recs[:d.good], got, "before the damage")
	return r
}

func cxCheckReader(t *testing.T, l *cxLog, d cxDamage) {
	r := cxReadToDamage(t, l, d)
	if d.sentinel == nil {
		require.NoError(t, r.Err())
		return
	}
	cxRequireCorruption(t, r.Err(), d, l.dir)
	require.False(t, r.Next(), "Next after an error")

	_, segEnd := l.recsIn(d.seg)
	if d.seg == l.lastSegment() {
		require.False(t, r.SkipSegment(), "no segment after the last")
		return
	}
	require.True(t, r.SkipSegment())
	var got [][]byte
	for r.Next() {
		got = append(got, bytes.Clone(r.Record()))
	}
	require.NoError(t, r.Err())
	cxRequireRecords(t, l.recs[segEnd:], got, "after SkipSegment")
}

// resumesAt returns the first record a reader gives after Resync at d:
// the first that begins in a page after the last damaged byte (the pages
// the damage reached are passed over, with the records that began before
// them), or, after a record that does not decompress, the next one.
func (l *cxLog) resumesAt(d cxDamage) int {
	first, end := l.recsIn(d.seg)
	if errors.Is(d.sentinel, wal.ErrDecompress) {
		return d.good + 1
	}
	clean := l.data[d.seg]
	last := int64(-1)
	for i := range min(len(clean), len(d.damaged)) {
		if clean[i] != d.damaged[i] {
			last = int64(i)
		}
	}
	page := (last/wal.PageSize + 1) * wal.PageSize
	for k := first; k < end; k++ {
		if l.spans[k].start >= page {
			return k
		}
	}
	return end
}

// cxCheckReaderResync reads past the damage with Reader.Resync: every
// record from resumesAt on comes back, and no record that is not one of
// the log's.
func cxCheckReaderResync(t *testing.T, l *cxLog, d cxDamage) {
	r := cxReadToDamage(t, l, d)
	cxRequireCorruption(t, r.Err(), d, l.dir)
	require.True(t, r.Resync())
	k := l.resumesAt(d)
	var got [][]byte
	for r.Next() {
		if len(got) == 0 {
			require.Equal(t, l.spans[k].start, r.RecordStart().Offset, "where reading went on")
		}
		got = append(got, bytes.Clone(r.Record()))
	}
	require.NoError(t, r.Err())
	require.False(t, r.Resync(), "Resync without an error")
	cxRequireRecords(t, l.recs[k:], got, "after Resync")
}

// cxCheckLiveResync is cxCheckReaderResync for a LiveReader over the
// damaged segment, read in the given shape.
func cxCheckLiveResync(t *testing.T, l *cxLog, d cxDamage, wrap func(io.Reader) io.Reader) {
	segFirst, segEnd := l.recsIn(d.seg)
	src := &cxLiveSource{data: d.damaged, n: len(d.damaged)}
	lr := wal.NewLiveReader(wrap(src), d.seg, 0)
	got := cxReadLive(t, lr)
	cxRequireRecords(t, l.recs[segFirst:d.good], got, "before the damage")
	cxRequireCorruption(t, lr.Err(), d, "")
	require.True(t, lr.Resync())
	k := l.resumesAt(d)
	got = got[:0]
	for i := 0; lr.Next(); i++ {
		require.Less(t, i, 10_000, "LiveReader does not stop")
		if i == 0 {
			require.Equal(t, l.spans[k].start, lr.RecordStart().Offset, "where reading went on")
		}
		got = append(got, bytes.Clone(lr.Record()))
	}
	require.Equal(t, io.EOF, lr.Err())
	cxRequireRecords(t, l.recs[k:segEnd], got, "after Resync")
	require.Equal(t, int64(len(d.damaged)), lr.Offset(), "the whole segment read")
}

// cxLiveSource is a segment that grows: Read returns io.EOF at n bytes
// until n is raised.
type cxLiveSource struct {
	data   []byte
	n, pos int
}

func (s *cxLiveSource) Read(p []byte) (int, error) {
	if s.pos >= s.n {
		return 0, io.EOF
	}
	k := copy(p, s.data[s.pos:s.n])
	s.pos += k
	return k, nil
}

func cxReadLive(t *testing.T, lr *wal.LiveReader) [][]byte {
	t.Helper()
	var got [][]byte
	for i := 0; lr.Next(); i++ {
		require.Less(t, i, 10_000, "LiveReader does not stop")
		got = append(got, bytes.Clone(lr.Record()))
	}
	return got
}

// cxCheckLive runs a LiveReader over src, the damaged segment; grow, for a
// torn segment, appends the bytes that were cut off.
func cxCheckLive(t *testing.T, l *cxLog, d cxDamage, src io.Reader, grow func()) {
	segFirst, segEnd := l.recsIn(d.seg)
	lr := wal.NewLiveReader(src, d.seg, 0)
	got := cxReadLive(t, lr)
	switch {
	case d.sentinel == nil:
		cxRequireRecords(t, l.recs[segFirst:segEnd], got, "whole segment")
		require.Equal(t, io.EOF, lr.Err())
	case d.torn:
		cxRequireRecords(t, l.recs[segFirst:d.good], got, "before the cut")
		require.Equal(t, io.EOF, lr.Err(), "a LiveReader waits at a torn tail")
		require.False(t, lr.Next(), "still nothing new")
		require.Equal(t, io.EOF, lr.Err())
		grow()
		got = cxReadLive(t, lr)
		cxRequireRecords(t, l.recs[d.good:segEnd], got, "after the rest arrived")
		require.Equal(t, io.EOF, lr.Err())
		require.Equal(t, int64(len(l.data[d.seg])), lr.Offset())
	default:
		cxRequireRecords(t, l.recs[segFirst:d.good], got, "before the damage")
		cxRequireCorruption(t, lr.Err(), d, "")
		require.False(t, lr.Next(), "an error is final")
		cxRequireCorruption(t, lr.Err(), d, "")
	}
}

func cxCheckLiveFile(t *testing.T, l *cxLog, d cxDamage) {
	// A copy of its own: the file grows when the rest is appended.
	path := wal.SegmentPath(t.TempDir(), d.seg)
	require.NoError(t, os.WriteFile(path, d.damaged, 0o666))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	cxCheckLive(t, l, d, f, func() {
		a, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		_, err = a.Write(d.rest)
		require.NoError(t, err)
		require.NoError(t, a.Close())
	})
}

func cxCheckLiveShape(t *testing.T, l *cxLog, d cxDamage, wrap func(io.Reader) io.Reader) {
	b := d.damaged
	src := &cxLiveSource{data: append(bytes.Clone(b), d.rest...), n: len(b)}
	cxCheckLive(t, l, d, wrap(src), func() { src.n = len(src.data) })
}

// TestLiveReaderTailsUpstreamWriter has upstream's writer append records of
// random sizes (many spanning pages) from another goroutine while our
// LiveReader tails the segment files, moving on when the writer has started
// the next segment and the current one is read to its end. Every record
// must come back, in order.
func TestLiveReaderTailsUpstreamWriter(t *testing.T) {
	for _, comp := range compressions {
		t.Run(string(comp), func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(len(comp))))
			recs := make([][]byte, 400)
			for i := range recs {
				var n int
				switch rng.Intn(8) {
				case 0:
					n = wal.PageSize + rng.Intn(2*wal.PageSize) // several pages
				case 1:
					n = wal.MaxFragmentPayload - 2 + rng.Intn(5)
				default:
					n = rng.Intn(3000)
				}
				recs[i] = make([]byte, n)
				if i%2 == 0 {
					rng.Read(recs[i])
				} else {
					for j := range recs[i] {
						recs[i][j] = byte('a' + (i+j/16)%26)
					}
				}
			}

			dir := t.TempDir()
			w, err := wlog.NewSize(nil, nil, dir, cxSegmentSize, upstreamCompression(comp))
			require.NoError(t, err)
			done := make(chan error, 1)
			stop := make(chan struct{})
			go func() {
				wrng := rand.New(rand.NewSource(3))
				var err error
				for i := 0; i < len(recs) && err == nil; {
					select {
					case <-stop:
						i = len(recs)
						continue
					default:
					}
					n := min(1+wrng.Intn(3), len(recs)-i)
					err = w.Log(recs[i : i+n]...)
					i += n
				}
				if cerr := w.Close(); err == nil {
					err = cerr
				}
				done <- err
			}()
			defer func() {
				close(stop) // if the reader failed: the writer stops early
				if err := <-done; err != nil {
					t.Errorf("writer: %v", err)
				}
			}()
			segs := cxTail(t, dir, recs, time.Now().Add(time.Minute))
			require.GreaterOrEqual(t, segs, 4, "segments read")
		})
	}
}

// cxTail reads the log in dir as a watcher does, segment after segment,
// while it is written, until it has all of want. It returns how many
// segments it read.
func cxTail(t *testing.T, dir string, want [][]byte, deadline time.Time) int {
	t.Helper()
	pause := func(what string) {
		if time.Now().After(deadline) {
			t.Fatalf("deadline passed waiting for %s", what)
		}
		time.Sleep(50 * time.Microsecond) // polling; the deadline ends it
	}
	seg := 0
	f, err := os.Open(wal.SegmentPath(dir, seg))
	require.NoError(t, err)
	defer func() { f.Close() }()
	lr := wal.NewLiveReader(f, seg, 0)
	got, rotated := 0, false
	for got < len(want) {
		if lr.Next() {
			if !bytes.Equal(want[got], lr.Record()) {
				t.Fatalf("record %d (segment %d) differs: want %d bytes, got %d", got, seg, len(want[got]), len(lr.Record()))
			}
			got++
			continue
		}
		require.Equal(t, io.EOF, lr.Err(), "after %d records", got)
		if rotated {
			// The next segment existed before this Next returned io.EOF,
			// so everything of this one was written and has been read.
			st, err := f.Stat()
			require.NoError(t, err)
			require.Equal(t, st.Size(), lr.Offset(), "segment %d read to its end", seg)
			require.NoError(t, f.Close())
			seg++
			f, err = os.Open(wal.SegmentPath(dir, seg))
			require.NoError(t, err)
			lr = wal.NewLiveReader(f, seg, 0)
			rotated = false
			continue
		}
		if _, err := os.Stat(wal.SegmentPath(dir, seg+1)); err == nil {
			rotated = true
			continue
		}
		pause("the writer")
	}
	require.False(t, lr.Next())
	require.Equal(t, io.EOF, lr.Err())
	return seg + 1
}

// TestSnappyClaimedLengthIsChecked: a snappy block starts with the length
// it decodes to. A reader must not allocate that much before finding that
// the block cannot produce it: here 7 bytes (with a valid CRC) claim about
// 4 GiB. Snappy cannot expand data more than 64 bytes per 3-byte copy
// element, so a claim beyond that is corrupt on its face. (Upstream's
// reader allocates the 4 GiB, twice, and takes seconds to fail.)
func TestSnappyClaimedLengthIsChecked(t *testing.T) {
	payload := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x01} // uvarint 4294967294, then junk
	seg := make([]byte, wal.HeaderSize, wal.HeaderSize+len(payload))
	seg[0] = cxFull | cxSnappy
	binary.BigEndian.PutUint16(seg[1:], uint16(len(payload)))
	binary.BigEndian.PutUint32(seg[3:], crc32.Checksum(payload, cxCastagnoli))
	seg = append(seg, payload...)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(wal.SegmentPath(dir, 0), seg, 0o666))

	allocated := func(fn func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	n := allocated(func() {
		r, err := wal.OpenReader(wal.OS, dir)
		require.NoError(t, err)
		defer r.Close()
		require.False(t, r.Next())
		require.ErrorIs(t, r.Err(), wal.ErrDecompress)
	})
	require.Less(t, n, uint64(64<<20), "bytes allocated by the Reader")
	n = allocated(func() {
		lr := wal.NewLiveReader(bytes.NewReader(seg), 0, 0)
		require.False(t, lr.Next())
		require.ErrorIs(t, lr.Err(), wal.ErrDecompress)
	})
	require.Less(t, n, uint64(64<<20), "bytes allocated by the LiveReader")

	// The bound must not refuse real data: zeros compress best (about
	// 21.3 to 1).
	dir = t.TempDir()
	w, err := wal.Open(dir, wal.Options{Compression: wal.Snappy})
	require.NoError(t, err)
	zeros := make([]byte, 10<<20)
	require.NoError(t, w.Log(zeros, zeros[:100], zeros[:68]))
	require.NoError(t, w.Close())
	r, err := wal.OpenReader(wal.OS, dir)
	require.NoError(t, err)
	defer r.Close()
	for _, want := range []int{10 << 20, 100, 68} {
		require.True(t, r.Next(), "%v", r.Err())
		require.Equal(t, zeros[:want], r.Record())
	}
	require.False(t, r.Next())
	require.NoError(t, r.Err())
}
