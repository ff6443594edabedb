package wal_test

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	uprecord "github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// scrapeLog writes, with upstream's writer, the log an agent scraping
// targets×seriesPerTarget series for scrapes rounds writes: a series record
// per target first, then one samples record per target per scrape.
func scrapeLog(tb testing.TB, dir string, comp compression.Type, targets, seriesPerTarget, scrapes int) (samples int) {
	tb.Helper()
	w, err := wlog.NewSize(nil, nil, dir, wlog.DefaultSegmentSize, comp)
	require.NoError(tb, err)
	var enc uprecord.Encoder
	rng := rand.New(rand.NewSource(1))
	var buf []byte
	for t := 0; t < targets; t++ {
		series := make([]uprecord.RefSeries, seriesPerTarget)
		for i := range series {
			series[i] = uprecord.RefSeries{
				Ref: chunks.HeadSeriesRef(t*seriesPerTarget + i + 1),
				Labels: labels.FromStrings("__name__", fmt.Sprintf("metric_%d", i%50), "instance", fmt.Sprintf("host-%d:9100", t),
					"job", "node", "le", fmt.Sprint(i)),
			}
		}
		buf = enc.Series(series, buf[:0])
		require.NoError(tb, w.Log(buf))
	}
	smpls := make([]uprecord.RefSample, seriesPerTarget)
	for s := 0; s < scrapes; s++ {
		for t := 0; t < targets; t++ {
			for i := range smpls {
				smpls[i] = uprecord.RefSample{
					Ref: chunks.HeadSeriesRef(t*seriesPerTarget + i + 1),
					T:   int64(1_700_000_000_000 + s*15_000 + t),
					V:   float64(rng.Intn(1000)),
				}
			}
			buf = enc.Samples(smpls, buf[:0])
			require.NoError(tb, w.Log(buf))
			samples += len(smpls)
		}
	}
	require.NoError(tb, w.Close())
	return samples
}

// ours decodes records as the watcher will: samples and series with our
// Decoder into reused slices.
type ours struct {
	dec     record.Decoder
	samples []record.RefSample
	series  []record.RefSeries
}

// decode decodes rec and returns how many samples it held.
func (o *ours) decode(tb testing.TB, rec []byte) int {
	var err error
	switch o.dec.TypeOf(rec) {
	case record.Samples, record.SamplesV2:
		o.samples, err = o.dec.Samples(rec, o.samples[:0])
		if err == nil {
			return len(o.samples)
		}
	case record.Series:
		o.series, err = o.dec.Series(rec, o.series[:0])
	}
	if err != nil {
		tb.Fatal(err)
	}
	return 0
}

// theirs is ours with upstream's decoder.
type theirs struct {
	dec     uprecord.Decoder
	samples []uprecord.RefSample
	series  []uprecord.RefSeries
}

func newTheirs() *theirs { return &theirs{dec: uprecord.NewDecoder(nil, nil)} }

func (u *theirs) decode(tb testing.TB, rec []byte) int {
	var err error
	switch u.dec.Type(rec) {
	case uprecord.Samples, uprecord.SamplesV2:
		u.samples, err = u.dec.Samples(rec, u.samples[:0])
		if err == nil {
			return len(u.samples)
		}
	case uprecord.Series:
		u.series, err = u.dec.Series(rec, u.series[:0])
	}
	if err != nil {
		tb.Fatal(err)
	}
	return 0
}

// readDecodeOurs reads every record of dir with our Reader and returns the
// number of samples.
func readDecodeOurs(tb testing.TB, dir string, o *ours) int {
	r, err := wal.OpenReader(wal.OS, dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		n += o.decode(tb, r.Record())
	}
	if r.Err() != nil {
		tb.Fatal(r.Err())
	}
	return n
}

// liveDecodeOurs reads each segment of dir with our LiveReader, as the
// watcher does: one reader, reset to each segment in turn.
func liveDecodeOurs(tb testing.TB, dir string, o *ours) int {
	n := 0
	var r *wal.LiveReader
	forEachSegmentFile(tb, dir, func(f *os.File, index int) {
		if r == nil {
			r = wal.NewLiveReader(f, index, 0)
		} else {
			r.Reset(f, index, 0)
		}
		for r.Next() {
			n += o.decode(tb, r.Record())
		}
		if r.Err() != io.EOF {
			tb.Fatal(r.Err())
		}
	})
	return n
}

func readDecodeUpstream(tb testing.TB, dir string, u *theirs) int {
	sr, err := wlog.NewSegmentsReader(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer sr.Close()
	r := wlog.NewReader(sr)
	n := 0
	for r.Next() {
		n += u.decode(tb, r.Record())
	}
	if r.Err() != nil {
		tb.Fatal(r.Err())
	}
	return n
}

func liveDecodeUpstream(tb testing.TB, dir string, u *theirs) int {
	metrics := wlog.NewLiveReaderMetrics(nil)
	n := 0
	forEachSegmentFile(tb, dir, func(f *os.File, _ int) {
		r := wlog.NewLiveReader(nil, metrics, f)
		for r.Next() {
			n += u.decode(tb, r.Record())
		}
		if r.Err() != io.EOF {
			tb.Fatal(r.Err())
		}
	})
	return n
}

// forEachSegmentFile opens each segment of dir in turn.
func forEachSegmentFile(tb testing.TB, dir string, fn func(f *os.File, index int)) {
	segs, err := wal.ListSegments(wal.OS, dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range segs {
		f, err := os.Open(filepath.Join(dir, s.Name))
		if err != nil {
			tb.Fatal(err)
		}
		fn(f, s.Index)
		f.Close()
	}
}

// BenchmarkReadDecode reads and decodes the same log, written by upstream,
// with walship's reader + decoder and upstream's, closed and live readers,
// uncompressed and snappy. One op reads the whole log (1M samples).
func BenchmarkReadDecode(b *testing.B) {
	for _, comp := range []compression.Type{compression.None, compression.Snappy} {
		dir := b.TempDir()
		want := scrapeLog(b, dir, comp, 20, 1000, 50)
		report := func(b *testing.B, n int) {
			if n != want {
				b.Fatalf("read %d samples, want %d", n, want)
			}
			b.ReportMetric(float64(want)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(0, "ns/op")
		}
		b.Run(fmt.Sprintf("compression=%s/reader=closed/impl=walship", comp), func(b *testing.B) {
			b.ReportAllocs()
			o := &ours{}
			var n int
			for i := 0; i < b.N; i++ {
				n = readDecodeOurs(b, dir, o)
			}
			report(b, n)
		})
		b.Run(fmt.Sprintf("compression=%s/reader=closed/impl=upstream", comp), func(b *testing.B) {
			b.ReportAllocs()
			u := newTheirs()
			var n int
			for i := 0; i < b.N; i++ {
				n = readDecodeUpstream(b, dir, u)
			}
			report(b, n)
		})
		b.Run(fmt.Sprintf("compression=%s/reader=live/impl=walship", comp), func(b *testing.B) {
			b.ReportAllocs()
			o := &ours{}
			var n int
			for i := 0; i < b.N; i++ {
				n = liveDecodeOurs(b, dir, o)
			}
			report(b, n)
		})
		b.Run(fmt.Sprintf("compression=%s/reader=live/impl=upstream", comp), func(b *testing.B) {
			b.ReportAllocs()
			u := newTheirs()
			var n int
			for i := 0; i < b.N; i++ {
				n = liveDecodeUpstream(b, dir, u)
			}
			report(b, n)
		})
	}
}

// TestReadDecodeAllocsPerRecord: once buffers are warm, reading and decoding
// a samples record allocates nothing. A whole read of a log costs a fixed
// handful of allocations (the reader, its buffers, the file), so reading
// 1000 more records costs no more allocations (give or take one or two
// that the runtime makes at random, such as for a GC cycle).
func TestReadDecodeAllocsPerRecord(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, comp := range []compression.Type{compression.None, compression.Snappy, compression.Zstd} {
		t.Run(string(comp), func(t *testing.T) {
			small := samplesOnlyLog(t, comp, 500)
			large := samplesOnlyLog(t, comp, 1500)
			o := &ours{}
			readDecodeOurs(t, large, o) // warm the slices and the shared coders
			allocs := func(dir string) float64 {
				return testing.AllocsPerRun(5, func() { readDecodeOurs(t, dir, o) })
			}
			a, b := allocs(small), allocs(large)
			t.Logf("allocations for a whole read: %.0f for 500 records, %.0f for 1500", a, b)
			require.LessOrEqual(t, b-a, 2.0, "allocations must not grow with the number of records")
		})
	}
}

// samplesOnlyLog writes records samples records of 500 samples each. It
// has no series records: their labels are allocated by design.
func samplesOnlyLog(t *testing.T, comp compression.Type, records int) string {
	dir := t.TempDir()
	w, err := wlog.NewSize(nil, nil, dir, wlog.DefaultSegmentSize, comp)
	require.NoError(t, err)
	var enc uprecord.Encoder
	smpls := make([]uprecord.RefSample, 500)
	var buf []byte
	for i := 0; i < records; i++ {
		for j := range smpls {
			smpls[j] = uprecord.RefSample{Ref: chunks.HeadSeriesRef(j), T: int64(i*1000 + j), V: float64(j)}
		}
		buf = enc.Samples(smpls, buf[:0])
		require.NoError(t, w.Log(buf))
	}
	require.NoError(t, w.Close())
	return dir
}
