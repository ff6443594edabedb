package record_test

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"

	"github.com/walship/walship/wal/record"
)

// Benchmarks compare this package with upstream's tsdb/record on the same
// records, shaped like a scrape's worth of a head appender's commit: series
// refs in increasing order, timestamps within a few milliseconds.

const (
	benchSamples    = 2000
	benchHistograms = 200
)

func benchSampleData() []record.RefSample {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]record.RefSample, benchSamples)
	ref, t := record.Ref(100_000), int64(1_700_000_000_000)
	for i := range out {
		ref += record.Ref(1 + r.IntN(3))
		out[i] = record.RefSample{Ref: ref, ST: t - 3_600_000, T: t + r.Int64N(20), V: float64(r.IntN(1_000_000))}
	}
	return out
}

func benchHistogram(r *rand.Rand) *histogram.Histogram {
	h := &histogram.Histogram{
		Schema:        3,
		ZeroThreshold: 1e-128,
		ZeroCount:     uint64(r.IntN(10)),
		Count:         uint64(1000 + r.IntN(1000)),
		Sum:           r.Float64() * 1e4,
		PositiveSpans: []histogram.Span{{Offset: int32(r.IntN(5)), Length: 8}, {Offset: 2, Length: 6}},
		NegativeSpans: []histogram.Span{{Offset: int32(r.IntN(5)), Length: 4}},
	}
	for range 14 {
		h.PositiveBuckets = append(h.PositiveBuckets, r.Int64N(20)-10)
	}
	for range 4 {
		h.NegativeBuckets = append(h.NegativeBuckets, r.Int64N(20)-10)
	}
	return h
}

func benchHistogramData() ([]record.RefHistogramSample, []record.RefFloatHistogramSample) {
	r := rand.New(rand.NewPCG(3, 4))
	hs := make([]record.RefHistogramSample, benchHistograms)
	fhs := make([]record.RefFloatHistogramSample, benchHistograms)
	ref, t := record.Ref(100_000), int64(1_700_000_000_000)
	for i := range hs {
		ref += record.Ref(1 + r.IntN(3))
		h := benchHistogram(r)
		hs[i] = record.RefHistogramSample{Ref: ref, T: t + r.Int64N(20), H: h}
		fhs[i] = record.RefFloatHistogramSample{Ref: ref, T: t + r.Int64N(20), FH: h.ToFloat(nil)}
	}
	return hs, fhs
}

func reportPerSecond(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), unit)
}

var stModes = []struct {
	name string
	st   bool
}{{"v1", false}, {"v2", true}}

func BenchmarkDecodeSamples(b *testing.B) {
	samples := benchSampleData()
	for _, m := range stModes {
		rec := record.Encoder{STStorage: m.st}.Samples(nil, samples)
		b.Run(m.name+"/walship", func(b *testing.B) {
			var d record.Decoder
			out, err := d.Samples(rec, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for b.Loop() {
				out, err = d.Samples(rec, out[:0])
			}
			if err != nil || len(out) != len(samples) {
				b.Fatal(err, len(out))
			}
			reportPerSecond(b, len(samples), "samples/s")
		})
		b.Run(m.name+"/upstream", func(b *testing.B) {
			d := newUpstreamDecoder()
			out, err := d.Samples(rec, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for b.Loop() {
				out, err = d.Samples(rec, out[:0])
			}
			if err != nil || len(out) != len(samples) {
				b.Fatal(err, len(out))
			}
			reportPerSecond(b, len(samples), "samples/s")
		})
	}
}

func BenchmarkDecodeHistograms(b *testing.B) {
	hs, fhs := benchHistogramData()
	for _, m := range stModes {
		rec, _ := record.Encoder{STStorage: m.st}.HistogramSamples(nil, hs)
		frec, _ := record.Encoder{STStorage: m.st}.FloatHistogramSamples(nil, fhs)
		b.Run("int/"+m.name+"/walship", func(b *testing.B) {
			var d record.Decoder
			out, err := d.HistogramSamples(rec, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for b.Loop() {
				out, err = d.HistogramSamples(rec, out[:0])
			}
			if err != nil || len(out) != len(hs) {
				b.Fatal(err, len(out))
			}
			reportPerSecond(b, len(hs), "histograms/s")
		})
		b.Run("int/"+m.name+"/upstream", func(b *testing.B) {
			d := newUpstreamDecoder()
			out, err := d.HistogramSamples(rec, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for b.Loop() {
				out, err = d.HistogramSamples(rec, out[:0])
			}
			if err != nil || len(out) != len(hs) {
				b.Fatal(err, len(out))
			}
			reportPerSecond(b, len(hs), "histograms/s")
		})
		b.Run("float/"+m.name+"/walship", func(b *testing.B) {
			var d record.Decoder
			out, err := d.FloatHistogramSamples(frec, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(frec)))
			for b.Loop() {
				out, err = d.FloatHistogramSamples(frec, out[:0])
			}
			if err != nil || len(out) != len(fhs) {
				b.Fatal(err, len(out))
			}
			reportPerSecond(b, len(fhs), "histograms/s")
		})
		b.Run("float/"+m.name+"/upstream", func(b *testing.B) {
			d := newUpstreamDecoder()
			out, err := d.FloatHistogramSamples(frec, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(frec)))
			for b.Loop() {
				out, err = d.FloatHistogramSamples(frec, out[:0])
			}
			if err != nil || len(out) != len(fhs) {
				b.Fatal(err, len(out))
			}
			reportPerSecond(b, len(fhs), "histograms/s")
		})
	}
}

func BenchmarkEncodeSamples(b *testing.B) {
	samples := benchSampleData()
	up := toUpSamples(samples)
	for _, m := range stModes {
		b.Run(m.name+"/walship", func(b *testing.B) {
			enc := record.Encoder{STStorage: m.st}
			buf := enc.Samples(nil, samples)
			b.ReportAllocs()
			for b.Loop() {
				buf = enc.Samples(buf[:0], samples)
			}
			reportPerSecond(b, len(samples), "samples/s")
		})
		b.Run(m.name+"/upstream", func(b *testing.B) {
			enc := upEnc(m.st)
			buf := enc.Samples(up, nil)
			b.ReportAllocs()
			for b.Loop() {
				buf = enc.Samples(up, buf[:0])
			}
			reportPerSecond(b, len(samples), "samples/s")
		})
	}
}
