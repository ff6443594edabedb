package record_test

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// allocRuns is how many runs testing.AllocsPerRun averages over.
const allocRuns = 50

// validHistograms returns histogram samples whose schemas the decoder keeps
// unchanged, so that a decode round trip involves no resolution reduction.
func validHistograms(g gen, n int) []record.RefHistogramSample {
	out := g.histogramSamples(n, false)
	for len(out) < n {
		out = append(out, g.histogramSamples(n, false)...)
	}
	return out[:n]
}

func validFloatHistograms(g gen, n int) []record.RefFloatHistogramSample {
	out := g.floatHistogramSamples(n, false)
	for len(out) < n {
		out = append(out, g.floatHistogramSamples(n, false)...)
	}
	return out[:n]
}

func TestDecodeAllocs(t *testing.T) {
	g := newGen(99)
	samples := g.samples(2000)
	hs := validHistograms(g, 200)
	fhs := validFloatHistograms(g, 200)
	for _, st := range []bool{false, true} {
		enc := record.Encoder{STStorage: st}
		name := map[bool]string{false: "v1", true: "v2"}[st]

		t.Run("samples/"+name, func(t *testing.T) {
			var d record.Decoder
			rec := enc.Samples(nil, samples)
			warm, err := d.Samples(rec, nil)
			require.NoError(t, err)
			allocs := testing.AllocsPerRun(allocRuns, func() {
				warm, err = d.Samples(rec, warm[:0])
			})
			require.NoError(t, err)
			require.Len(t, warm, len(samples))
			require.Zero(t, allocs)
		})

		t.Run("histograms/"+name, func(t *testing.T) {
			var d record.Decoder
			var err error
			rec, crec := enc.HistogramSamples(nil, hs)
			decode := func(dst []record.RefHistogramSample) []record.RefHistogramSample {
				for _, r := range [][]byte{rec, crec} {
					if len(r) > 0 {
						dst, err = d.HistogramSamples(r, dst)
					}
				}
				return dst
			}
			warm := decode(nil)
			require.NoError(t, err)
			allocs := testing.AllocsPerRun(allocRuns, func() { warm = decode(warm[:0]) })
			require.NoError(t, err)
			require.Len(t, warm, len(hs))
			require.Zero(t, allocs)
		})

		t.Run("float_histograms/"+name, func(t *testing.T) {
			var d record.Decoder
			var err error
			rec, crec := enc.FloatHistogramSamples(nil, fhs)
			decode := func(dst []record.RefFloatHistogramSample) []record.RefFloatHistogramSample {
				for _, r := range [][]byte{rec, crec} {
					if len(r) > 0 {
						dst, err = d.FloatHistogramSamples(r, dst)
					}
				}
				return dst
			}
			warm := decode(nil)
			require.NoError(t, err)
			allocs := testing.AllocsPerRun(allocRuns, func() { warm = decode(warm[:0]) })
			require.NoError(t, err)
			require.Len(t, warm, len(fhs))
			require.Zero(t, allocs)
		})
	}

	t.Run("histograms/reserved schema", func(t *testing.T) {
		// Reducing the resolution happens in place.
		in := []record.RefHistogramSample{{Ref: 1, T: 1, H: &histogram.Histogram{Schema: 12, Count: 6,
			PositiveSpans: []histogram.Span{{Offset: 3, Length: 3}, {Offset: 40, Length: 3}}, PositiveBuckets: []int64{1, 0, 0, 1, 0, -1}}}}
		rec, _ := record.Encoder{}.HistogramSamples(nil, in)
		var d record.Decoder
		warm, err := d.HistogramSamples(rec, nil)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(allocRuns, func() { warm, err = d.HistogramSamples(rec, warm[:0]) })
		require.NoError(t, err)
		require.Equal(t, int32(8), warm[0].H.Schema)
		require.Zero(t, allocs)
	})

	t.Run("series", func(t *testing.T) {
		series := g.series(100)
		rec := record.Encoder{}.Series(nil, series)
		var d record.Decoder
		warm, err := d.Series(rec, nil)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(allocRuns, func() { warm, err = d.Series(rec, warm[:0]) })
		require.NoError(t, err)
		require.LessOrEqual(t, allocs, float64(len(series)), "more than one allocation per label set")
	})
}

func TestEncodeAllocs(t *testing.T) {
	g := newGen(98)
	samples := g.samples(1000)
	hs := validHistograms(g, 100)
	fhs := validFloatHistograms(g, 100)
	series := g.series(100)
	exemplars := g.exemplars(100)
	meta := g.metadata(100)
	stones := g.stones(100)
	markers := g.markers(100)
	buf := make([]byte, 0, 1<<20)
	for _, st := range []bool{false, true} {
		enc := record.Encoder{STStorage: st}
		for name, fn := range map[string]func(){
			"samples":          func() { buf = enc.Samples(buf[:0], samples) },
			"histograms":       func() { buf, _ = enc.HistogramSamples(buf[:0], hs) },
			"float_histograms": func() { buf, _ = enc.FloatHistogramSamples(buf[:0], fhs) },
			"series":           func() { buf = enc.Series(buf[:0], series) },
			"exemplars":        func() { buf = enc.Exemplars(buf[:0], exemplars) },
			"metadata":         func() { buf = enc.Metadata(buf[:0], meta) },
			"tombstones":       func() { buf = enc.Tombstones(buf[:0], stones) },
			"mmap_markers":     func() { buf = enc.MmapMarkers(buf[:0], markers) },
			"min_valid_time":   func() { buf = enc.MinValidTime(buf[:0], 5) },
		} {
			require.Zero(t, testing.AllocsPerRun(allocRuns, fn), "%s, st=%v", name, st)
		}
	}
}
