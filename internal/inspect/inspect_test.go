package inspect_test

import (
	"os"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	uprecord "github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walship/walship/internal/inspect"
	"github.com/walship/walship/wal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// writeLog writes, with upstream's writer, 3 series and per round 3 samples,
// one histogram and one exemplar; metadata once. Segments are small so the
// log has several.
func writeLog(t *testing.T, dir string, rounds int) {
	w, err := wlog.NewSize(nil, nil, dir, 4*wal.PageSize, compression.Snappy)
	require.NoError(t, err)
	var enc uprecord.Encoder
	series := []uprecord.RefSeries{
		{Ref: 1, Labels: labels.FromStrings("__name__", "a")},
		{Ref: 2, Labels: labels.FromStrings("__name__", "b")},
		{Ref: 3, Labels: labels.FromStrings("__name__", "c")},
	}
	require.NoError(t, w.Log(enc.Series(series, nil)))
	require.NoError(t, w.Log(enc.Metadata([]uprecord.RefMetadata{{Ref: 1, Type: 1, Unit: "s", Help: "h"}}, nil)))
	h := &histogram.Histogram{Count: 1, Sum: 1, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{1}}
	for i := 0; i < rounds; i++ {
		ts := int64(1000 + i)
		var smpls []uprecord.RefSample
		for _, s := range series {
			smpls = append(smpls, uprecord.RefSample{Ref: s.Ref, T: ts, V: float64(i)})
		}
		hist, _ := enc.HistogramSamples([]uprecord.RefHistogramSample{{Ref: 3, T: ts, H: h}}, nil)
		ex := enc.Exemplars([]uprecord.RefExemplar{{Ref: chunks.HeadSeriesRef(1), T: ts, V: 1, Labels: labels.FromStrings("trace_id", "abc")}}, nil)
		require.NoError(t, w.Log(enc.Samples(smpls, nil), hist, ex))
	}
	require.NoError(t, w.Close())
}

func TestDirCountsEverything(t *testing.T) {
	dir := t.TempDir()
	const rounds = 3000
	writeLog(t, dir, rounds)

	rep, err := inspect.Dir(wal.OS, dir)
	require.NoError(t, err)
	require.Empty(t, rep.Corruptions)
	require.Greater(t, len(rep.Segments), 2, "the log must span several segments")
	require.Equal(t, 3, rep.Series)
	require.Equal(t, 3*rounds, rep.Samples)
	require.Equal(t, rounds, rep.Histograms)
	require.Equal(t, rounds, rep.Exemplars)
	require.Equal(t, 1, rep.Metadata)
	require.Equal(t, int64(1000), rep.MinTime)
	require.Equal(t, int64(1000+rounds-1), rep.MaxTime)
	require.Equal(t, rounds, rep.Records["samples"])
	require.Equal(t, 1, rep.Records["series"])
}

func TestDirReportsCorruptionAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 3000)
	clean, err := inspect.Dir(wal.OS, dir)
	require.NoError(t, err)

	// Damage a payload byte in the first page of segment 1.
	path := wal.SegmentPath(dir, 1)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[100] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o666))

	rep, err := inspect.Dir(wal.OS, dir)
	require.NoError(t, err)
	require.Len(t, rep.Corruptions, 1)
	c := rep.Corruptions[0]
	require.Equal(t, 1, c.Segment)
	require.Less(t, c.Offset, int64(100))
	require.Contains(t, c.Error, "checksum")
	// Everything of the other segments is still counted, and the damaged
	// one's pages after the first (4 pages a segment).
	for i, s := range rep.Segments {
		if s.Index != 1 {
			require.Equal(t, clean.Segments[i].Samples, s.Samples, "segment %d", s.Index)
			continue
		}
		require.Less(t, s.Samples, clean.Segments[i].Samples, "segment %d", s.Index)
		require.Greater(t, s.Samples, clean.Segments[i].Samples/2, "segment %d: its last three pages", s.Index)
	}
	require.Less(t, rep.Samples, clean.Samples)
}

func TestDirErrors(t *testing.T) {
	_, err := inspect.Dir(wal.OS, "/does/not/exist")
	require.Error(t, err)
	_, err = inspect.Dir(wal.OS, t.TempDir())
	require.ErrorContains(t, err, "no WAL segments")
}
