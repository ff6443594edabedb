package record_test

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	upstream "github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// staleNaN is Prometheus' stale marker.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

// newUpstreamDecoder returns upstream's decoder with a logger that discards
// the warnings it logs for unknown histogram schemas.
func newUpstreamDecoder() upstream.Decoder {
	return upstream.NewDecoder(labels.NewSymbolTable(), slog.New(slog.DiscardHandler))
}

// gen makes random record contents. Its choices lean towards the edges that
// matter to the encodings: zero, small and huge deltas, NaNs, empty strings.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) gen { return gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g gen) n(max int) int { return g.r.IntN(max + 1) }

func (g gen) ref() record.Ref {
	switch g.r.IntN(4) {
	case 0:
		return record.Ref(g.r.IntN(10))
	case 1:
		return record.Ref(g.r.Uint64())
	default:
		return record.Ref(1000 + g.r.IntN(100000))
	}
}

func (g gen) ts() int64 {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return int64(g.r.Uint64())
	case 2:
		return -g.r.Int64N(1 << 40)
	case 3:
		return []int64{math.MinInt64, math.MaxInt64}[g.r.IntN(2)]
	default:
		return 1_700_000_000_000 + g.r.Int64N(3_600_000)
	}
}

func (g gen) value() float64 {
	switch g.r.IntN(10) {
	case 0:
		return math.NaN()
	case 1:
		return staleNaN
	case 2:
		return math.Float64frombits(g.r.Uint64())
	case 3:
		return []float64{math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1)}[g.r.IntN(4)]
	default:
		return g.r.NormFloat64() * 1000
	}
}

func (g gen) str(max int) string {
	var sb strings.Builder
	n := g.n(max)
	if g.r.IntN(10) == 0 {
		n = 128 + g.n(300) // two-byte length prefix
	}
	alphabet := []rune("abcdefghijklmnopqrstuvwxyz_ABC0123456789:é日本 ")
	for range n {
		sb.WriteRune(alphabet[g.r.IntN(len(alphabet))])
	}
	return sb.String()
}

func (g gen) labels() labels.Labels {
	b := labels.NewScratchBuilder(0)
	seen := map[string]bool{}
	for range g.n(8) {
		name := g.str(12)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		b.Add(name, g.str(20))
	}
	b.Sort()
	return b.Labels()
}

func (g gen) series(max int) []record.RefSeries {
	out := make([]record.RefSeries, g.n(max))
	for i := range out {
		out[i] = record.RefSeries{Ref: g.ref(), Labels: g.labels()}
	}
	return out
}

// st returns a start timestamp given the previous and first ones, hitting
// every ST marker.
func (g gen) st(prev, first int64) int64 {
	switch g.r.IntN(5) {
	case 0:
		return 0
	case 1:
		return prev
	case 2:
		return first
	case 3:
		return g.ts()
	default:
		return prev + g.r.Int64N(1000) - 500
	}
}

func (g gen) samples(max int) []record.RefSample {
	out := make([]record.RefSample, g.n(max))
	var prevST, firstST int64
	for i := range out {
		st := g.st(prevST, firstST)
		if i == 0 {
			firstST = st
		}
		prevST = st
		out[i] = record.RefSample{Ref: g.ref(), ST: st, T: g.ts(), V: g.value()}
	}
	return out
}

func (g gen) stones(max int) []record.Stone {
	out := make([]record.Stone, g.n(max))
	for i := range out {
		out[i] = record.Stone{Ref: g.ref(), Mint: g.ts(), Maxt: g.ts()}
	}
	return out
}

func (g gen) exemplars(max int) []record.RefExemplar {
	out := make([]record.RefExemplar, g.n(max))
	for i := range out {
		out[i] = record.RefExemplar{Ref: g.ref(), T: g.ts(), V: g.value(), Labels: g.labels()}
	}
	return out
}

func (g gen) markers(max int) []record.RefMmapMarker {
	out := make([]record.RefMmapMarker, g.n(max))
	for i := range out {
		out[i] = record.RefMmapMarker{Ref: g.ref(), MmapRef: g.r.Uint64()}
	}
	return out
}

func (g gen) metadata(max int) []record.RefMetadata {
	out := make([]record.RefMetadata, g.n(max))
	for i := range out {
		out[i] = record.RefMetadata{Ref: g.ref(), Type: record.MetricType(g.r.IntN(256)), Unit: g.str(5), Help: g.str(40)}
	}
	return out
}

// schema returns a schema: mostly valid ones, custom buckets often, and,
// when odd is set, reserved and unknown ones too.
func (g gen) schema(odd bool) int32 {
	if odd && g.r.IntN(3) == 0 {
		return []int32{9, 10, 12, 52, -5, -9, 53, -10, -52, -54, 100, math.MaxInt32}[g.r.IntN(12)]
	}
	if g.r.IntN(3) == 0 {
		return histogram.CustomBucketsSchema
	}
	return int32(g.r.IntN(13)) - 4
}

// spans returns spans for n buckets, consistent enough for ReduceResolution:
// every offset after the first is non-negative.
func (g gen) spans() ([]histogram.Span, int) {
	if g.r.IntN(5) == 0 {
		return nil, 0
	}
	spans := make([]histogram.Span, 1+g.n(3))
	total := 0
	for i := range spans {
		off := int32(g.n(5))
		if i == 0 {
			off = int32(g.r.IntN(41)) - 20
		}
		l := uint32(g.n(5))
		if i == 0 && l == 0 {
			l = 1
		}
		spans[i] = histogram.Span{Offset: off, Length: l}
		total += int(l)
	}
	return spans, total
}

func (g gen) bounds() []float64 {
	out := make([]float64, g.n(6))
	v := -10.0
	for i := range out {
		v += 1 + g.r.Float64()*10
		out[i] = v
	}
	if len(out) > 0 && g.r.IntN(3) == 0 {
		out[len(out)-1] = math.Inf(1)
	}
	return out
}

func (g gen) histogram(odd bool) *histogram.Histogram {
	h := &histogram.Histogram{
		CounterResetHint: histogram.CounterResetHint(g.r.IntN(4)),
		Schema:           g.schema(odd),
		ZeroThreshold:    []float64{0, 1e-128, 0.001, g.value()}[g.r.IntN(4)],
		ZeroCount:        uint64(g.r.IntN(100)),
		Count:            g.r.Uint64N(1 << uint(1+g.r.IntN(63))),
		Sum:              g.value(),
	}
	var n int
	h.PositiveSpans, n = g.spans()
	for range n {
		h.PositiveBuckets = append(h.PositiveBuckets, g.r.Int64N(200)-100)
	}
	if !histogram.IsCustomBucketsSchema(h.Schema) {
		h.NegativeSpans, n = g.spans()
		for range n {
			h.NegativeBuckets = append(h.NegativeBuckets, g.r.Int64N(200)-100)
		}
	} else {
		h.CustomValues = g.bounds()
	}
	return h
}

func (g gen) floatHistogram(odd bool) *histogram.FloatHistogram {
	h := &histogram.FloatHistogram{
		CounterResetHint: histogram.CounterResetHint(g.r.IntN(4)),
		Schema:           g.schema(odd),
		ZeroThreshold:    []float64{0, 1e-128, 0.001, g.value()}[g.r.IntN(4)],
		ZeroCount:        g.value(),
		Count:            g.value(),
		Sum:              g.value(),
	}
	var n int
	h.PositiveSpans, n = g.spans()
	for range n {
		h.PositiveBuckets = append(h.PositiveBuckets, g.value())
	}
	if !histogram.IsCustomBucketsSchema(h.Schema) {
		h.NegativeSpans, n = g.spans()
		for range n {
			h.NegativeBuckets = append(h.NegativeBuckets, g.value())
		}
	} else {
		h.CustomValues = g.bounds()
	}
	return h
}

func (g gen) histogramSamples(max int, odd bool) []record.RefHistogramSample {
	out := make([]record.RefHistogramSample, g.n(max))
	var prevST, firstST int64
	for i := range out {
		st := g.st(prevST, firstST)
		if i == 0 {
			firstST = st
		}
		prevST = st
		out[i] = record.RefHistogramSample{Ref: g.ref(), ST: st, T: g.ts(), H: g.histogram(odd)}
	}
	return out
}

func (g gen) floatHistogramSamples(max int, odd bool) []record.RefFloatHistogramSample {
	out := make([]record.RefFloatHistogramSample, g.n(max))
	var prevST, firstST int64
	for i := range out {
		st := g.st(prevST, firstST)
		if i == 0 {
			firstST = st
		}
		prevST = st
		out[i] = record.RefFloatHistogramSample{Ref: g.ref(), ST: st, T: g.ts(), FH: g.floatHistogram(odd)}
	}
	return out
}

// Conversions between our types and upstream's.

func toUpSeries(in []record.RefSeries) []upstream.RefSeries {
	out := make([]upstream.RefSeries, len(in))
	for i, s := range in {
		out[i] = upstream.RefSeries{Ref: chunks.HeadSeriesRef(s.Ref), Labels: s.Labels}
	}
	return out
}

func fromUpSeries(in []upstream.RefSeries) []record.RefSeries {
	out := make([]record.RefSeries, len(in))
	for i, s := range in {
		out[i] = record.RefSeries{Ref: record.Ref(s.Ref), Labels: s.Labels}
	}
	return out
}

func toUpSamples(in []record.RefSample) []upstream.RefSample {
	out := make([]upstream.RefSample, len(in))
	for i, s := range in {
		out[i] = upstream.RefSample{Ref: chunks.HeadSeriesRef(s.Ref), ST: s.ST, T: s.T, V: s.V}
	}
	return out
}

func fromUpSamples(in []upstream.RefSample) []record.RefSample {
	out := make([]record.RefSample, len(in))
	for i, s := range in {
		out[i] = record.RefSample{Ref: record.Ref(s.Ref), ST: s.ST, T: s.T, V: s.V}
	}
	return out
}

func toUpStones(in []record.Stone) []tombstones.Stone {
	out := make([]tombstones.Stone, len(in))
	for i, s := range in {
		out[i] = tombstones.Stone{Ref: storage.SeriesRef(s.Ref), Intervals: tombstones.Intervals{{Mint: s.Mint, Maxt: s.Maxt}}}
	}
	return out
}

func fromUpStones(in []tombstones.Stone) []record.Stone {
	var out []record.Stone
	for _, s := range in {
		for _, iv := range s.Intervals {
			out = append(out, record.Stone{Ref: record.Ref(s.Ref), Mint: iv.Mint, Maxt: iv.Maxt})
		}
	}
	return out
}

func toUpExemplars(in []record.RefExemplar) []upstream.RefExemplar {
	out := make([]upstream.RefExemplar, len(in))
	for i, e := range in {
		out[i] = upstream.RefExemplar{Ref: chunks.HeadSeriesRef(e.Ref), T: e.T, V: e.V, Labels: e.Labels}
	}
	return out
}

func fromUpExemplars(in []upstream.RefExemplar) []record.RefExemplar {
	out := make([]record.RefExemplar, len(in))
	for i, e := range in {
		out[i] = record.RefExemplar{Ref: record.Ref(e.Ref), T: e.T, V: e.V, Labels: e.Labels}
	}
	return out
}

func toUpMarkers(in []record.RefMmapMarker) []upstream.RefMmapMarker {
	out := make([]upstream.RefMmapMarker, len(in))
	for i, m := range in {
		out[i] = upstream.RefMmapMarker{Ref: chunks.HeadSeriesRef(m.Ref), MmapRef: chunks.ChunkDiskMapperRef(m.MmapRef)}
	}
	return out
}

func fromUpMarkers(in []upstream.RefMmapMarker) []record.RefMmapMarker {
	out := make([]record.RefMmapMarker, len(in))
	for i, m := range in {
		out[i] = record.RefMmapMarker{Ref: record.Ref(m.Ref), MmapRef: uint64(m.MmapRef)}
	}
	return out
}

func toUpMetadata(in []record.RefMetadata) []upstream.RefMetadata {
	out := make([]upstream.RefMetadata, len(in))
	for i, m := range in {
		out[i] = upstream.RefMetadata{Ref: chunks.HeadSeriesRef(m.Ref), Type: uint8(m.Type), Unit: m.Unit, Help: m.Help}
	}
	return out
}

func fromUpMetadata(in []upstream.RefMetadata) []record.RefMetadata {
	out := make([]record.RefMetadata, len(in))
	for i, m := range in {
		out[i] = record.RefMetadata{Ref: record.Ref(m.Ref), Type: record.MetricType(m.Type), Unit: m.Unit, Help: m.Help}
	}
	return out
}

func toUpHistograms(in []record.RefHistogramSample) []upstream.RefHistogramSample {
	out := make([]upstream.RefHistogramSample, len(in))
	for i, h := range in {
		out[i] = upstream.RefHistogramSample{Ref: chunks.HeadSeriesRef(h.Ref), ST: h.ST, T: h.T, H: h.H}
	}
	return out
}

func fromUpHistograms(in []upstream.RefHistogramSample) []record.RefHistogramSample {
	out := make([]record.RefHistogramSample, len(in))
	for i, h := range in {
		out[i] = record.RefHistogramSample{Ref: record.Ref(h.Ref), ST: h.ST, T: h.T, H: h.H}
	}
	return out
}

func toUpFloatHistograms(in []record.RefFloatHistogramSample) []upstream.RefFloatHistogramSample {
	out := make([]upstream.RefFloatHistogramSample, len(in))
	for i, h := range in {
		out[i] = upstream.RefFloatHistogramSample{Ref: chunks.HeadSeriesRef(h.Ref), ST: h.ST, T: h.T, FH: h.FH}
	}
	return out
}

func fromUpFloatHistograms(in []upstream.RefFloatHistogramSample) []record.RefFloatHistogramSample {
	out := make([]record.RefFloatHistogramSample, len(in))
	for i, h := range in {
		out[i] = record.RefFloatHistogramSample{Ref: record.Ref(h.Ref), ST: h.ST, T: h.T, FH: h.FH}
	}
	return out
}

// Canonical forms for comparing decoded values: floats as bits so that NaNs
// compare, labels as strings, and nil and empty slices alike.

func bits(fs []float64) []uint64 {
	if len(fs) == 0 {
		return nil
	}
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = math.Float64bits(f)
	}
	return out
}

func nonEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func canonSeries(in []record.RefSeries) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fmt.Sprintf("%d %q", s.Ref, s.Labels.String())
	}
	return out
}

type canonSample struct {
	Ref   record.Ref
	ST, T int64
	V     uint64
}

func canonSamples(in []record.RefSample) []canonSample {
	out := make([]canonSample, len(in))
	for i, s := range in {
		out[i] = canonSample{s.Ref, s.ST, s.T, math.Float64bits(s.V)}
	}
	return out
}

// withoutST returns a copy of samples with ST zeroed, as V1 records lose it.
func withoutST(in []record.RefSample) []record.RefSample {
	out := slices.Clone(in)
	for i := range out {
		out[i].ST = 0
	}
	return out
}

type canonExemplar struct {
	Ref    record.Ref
	T      int64
	V      uint64
	Labels string
}

func canonExemplars(in []record.RefExemplar) []canonExemplar {
	out := make([]canonExemplar, len(in))
	for i, e := range in {
		out[i] = canonExemplar{e.Ref, e.T, math.Float64bits(e.V), e.Labels.String()}
	}
	return out
}

type canonHist struct {
	Ref                              record.Ref
	ST, T                            int64
	Hint                             histogram.CounterResetHint
	Schema                           int32
	ZeroThreshold                    uint64
	ZeroCount, Count, Sum            uint64
	PosSpans, NegSpans               []histogram.Span
	PosBuckets, NegBuckets           []int64
	PosFloatBuckets, NegFloatBuckets []uint64
	CustomValues                     []uint64
}

func canonHistograms(in []record.RefHistogramSample) []canonHist {
	out := make([]canonHist, len(in))
	for i, s := range in {
		h := s.H
		out[i] = canonHist{
			Ref: s.Ref, ST: s.ST, T: s.T, Hint: h.CounterResetHint, Schema: h.Schema,
			ZeroThreshold: math.Float64bits(h.ZeroThreshold), ZeroCount: h.ZeroCount, Count: h.Count,
			Sum:      math.Float64bits(h.Sum),
			PosSpans: nonEmpty(h.PositiveSpans), NegSpans: nonEmpty(h.NegativeSpans),
			PosBuckets: nonEmpty(h.PositiveBuckets), NegBuckets: nonEmpty(h.NegativeBuckets),
			CustomValues: bits(h.CustomValues),
		}
		if !histogram.IsCustomBucketsSchema(h.Schema) {
			out[i].CustomValues = nil // not part of the encoding
		}
	}
	return out
}

func canonFloatHistograms(in []record.RefFloatHistogramSample) []canonHist {
	out := make([]canonHist, len(in))
	for i, s := range in {
		h := s.FH
		out[i] = canonHist{
			Ref: s.Ref, ST: s.ST, T: s.T, Hint: h.CounterResetHint, Schema: h.Schema,
			ZeroThreshold: math.Float64bits(h.ZeroThreshold), ZeroCount: math.Float64bits(h.ZeroCount),
			Count: math.Float64bits(h.Count), Sum: math.Float64bits(h.Sum),
			PosSpans: nonEmpty(h.PositiveSpans), NegSpans: nonEmpty(h.NegativeSpans),
			PosFloatBuckets: bits(h.PositiveBuckets), NegFloatBuckets: bits(h.NegativeBuckets),
			CustomValues: bits(h.CustomValues),
		}
		if !histogram.IsCustomBucketsSchema(h.Schema) {
			out[i].CustomValues = nil
		}
	}
	return out
}

// histogramsWithoutST returns shallow copies with ST zeroed.
func histogramsWithoutST(in []record.RefHistogramSample) []record.RefHistogramSample {
	out := slices.Clone(in)
	for i := range out {
		out[i].ST = 0
	}
	return out
}

func floatHistogramsWithoutST(in []record.RefFloatHistogramSample) []record.RefFloatHistogramSample {
	out := slices.Clone(in)
	for i := range out {
		out[i].ST = 0
	}
	return out
}

// splitCustom orders histograms as V1 records return them: exponential ones
// first, then the custom-bucket ones.
func splitCustom(in []record.RefHistogramSample) []record.RefHistogramSample {
	var exp, custom []record.RefHistogramSample
	for _, h := range in {
		if h.H.UsesCustomBuckets() {
			custom = append(custom, h)
		} else {
			exp = append(exp, h)
		}
	}
	return append(exp, custom...)
}

func splitCustomFloat(in []record.RefFloatHistogramSample) []record.RefFloatHistogramSample {
	var exp, custom []record.RefFloatHistogramSample
	for _, h := range in {
		if h.FH.UsesCustomBuckets() {
			custom = append(custom, h)
		} else {
			exp = append(exp, h)
		}
	}
	return append(exp, custom...)
}

// requireSameBytes fails with the first differing offset, which is easier to
// read than two hex dumps.
func requireSameBytes(t testing.TB, want, got []byte, what string) {
	t.Helper()
	if string(want) == string(got) {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	require.Failf(t, "encodings differ", "%s: upstream %d bytes, ours %d bytes, first difference at byte %d", what, len(want), len(got), i)
}
