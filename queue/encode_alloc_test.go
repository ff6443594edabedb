package queue

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// The encoders allocate nothing per request once their buffers are warm.

const allocTestSamples = 2000

func TestRW1EncoderNoAllocs(t *testing.T) {
	series := benchSeries(allocTestSamples)
	pre := make([][]byte, len(series))
	for i, ls := range series {
		pre[i] = appendRW1Labels(nil, ls)
	}
	var enc rw1Encoder
	var sink int
	request := func() {
		enc.Reset()
		for i, lb := range pre {
			enc.AddSample(lb, 1_700_000_000_000+int64(i), float64(i))
		}
		sink += len(enc.Bytes())
	}
	request() // warm
	if n := testing.AllocsPerRun(20, request); n != 0 {
		t.Fatalf("RW1 request of %d samples: %v allocs, want 0", allocTestSamples, n)
	}

	h, fh := allocTestHistograms()
	ex := labels.FromStrings("trace_id", "abc123")
	other := func() {
		enc.Reset()
		for i, lb := range pre[:100] {
			enc.AddHistogram(lb, int64(i), h)
			enc.AddFloatHistogram(lb, int64(i), fh)
			enc.AddExemplar(lb, ex, int64(i), 1)
			enc.AddMetadata("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.", "seconds")
		}
		sink += len(enc.Bytes())
	}
	other()
	if n := testing.AllocsPerRun(20, other); n != 0 {
		t.Fatalf("RW1 histograms/exemplars/metadata: %v allocs, want 0", n)
	}
	_ = sink
}

func TestRW2EncoderNoAllocs(t *testing.T) {
	series := benchSeries(allocTestSamples)
	tab := newTestTable()
	pre := make([]*encodedSeries, len(series))
	for i, ls := range series {
		pre[i] = internSeries(tab, ls)
		pre[i] = withMeta(tab, pre[i], "counter", "Seconds the CPUs spent in each mode.", "seconds")
	}
	enc := newRW2Encoder(tab)
	var sink int
	request := func() {
		enc.Reset()
		for i := range pre {
			enc.AddSample(pre[i], 1_700_000_000_000+int64(i), float64(i), 0)
		}
		sink += len(enc.Bytes())
	}
	// Warm: a request with a table of its own, one under the carried
	// table that marks each series, one that gives each its refs.
	for range 3 {
		request()
	}
	if n := testing.AllocsPerRun(20, request); n != 0 {
		t.Fatalf("RW2 request of %d samples: %v allocs, want 0", allocTestSamples, n)
	}

	h, fh := allocTestHistograms()
	ex := labels.FromStrings("trace_id", "abc123")
	other := func() {
		enc.Reset()
		for i := range pre[:100] {
			enc.AddHistogram(pre[i], int64(i), h, 5)
			enc.AddFloatHistogram(pre[i], int64(i), fh, 0)
			enc.AddExemplar(pre[i], ex, int64(i), 1)
		}
		sink += len(enc.Bytes())
	}
	other()
	if n := testing.AllocsPerRun(20, other); n != 0 {
		t.Fatalf("RW2 histograms/exemplars: %v allocs, want 0", n)
	}
	_ = sink
}

func allocTestHistograms() (*histogram.Histogram, *histogram.FloatHistogram) {
	r := rand.New(rand.NewPCG(9, 10))
	h := randHistogram(r)
	h.PositiveSpans = []histogram.Span{{Offset: -2, Length: 3}, {Offset: 1, Length: 2}}
	h.PositiveBuckets = []int64{1, 2, -1, 0, 5}
	fh := h.ToFloat(nil)
	fh.Schema, fh.CustomValues = histogram.CustomBucketsSchema, []float64{0.1, 0.5, 1, 5, 10}
	return h, fh
}
