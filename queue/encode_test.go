package queue

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gogo/protobuf/proto"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// The oracle for the encoders is upstream's gogo-generated Marshal of the
// request struct that upstream's QueueManager would build for the same data.

var testRunes = []rune("abcxyz_019ABZéüß日本語ĳ🙂 :/.-\"\\\x00\x7f")

func randString(r *rand.Rand, maxLen int) string {
	n := 1 + r.IntN(maxLen)
	switch r.IntN(40) {
	case 0:
		n = 100 + r.IntN(300) // two-byte length varints
	case 1:
		n = 17000 // three-byte length varints
	}
	var sb strings.Builder
	for range n {
		sb.WriteRune(testRunes[r.IntN(len(testRunes))])
	}
	return sb.String()
}

func randLabels(r *rand.Rand, maxLabels int) labels.Labels {
	n := r.IntN(maxLabels + 1)
	b := labels.NewScratchBuilder(n)
	seen := map[string]bool{}
	if n > 0 && r.IntN(4) > 0 {
		b.Add(model.MetricNameLabel, randString(r, 20))
		seen[model.MetricNameLabel] = true
	}
	for len(seen) < n {
		name := randString(r, 12)
		if r.IntN(3) == 0 {
			name = []string{"job", "instance", "le", "quantile", "trace_id"}[r.IntN(5)]
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		v := randString(r, 30)
		if r.IntN(4) == 0 {
			v = []string{"node", "localhost:9100", "0.5", "+Inf", "abc"}[r.IntN(5)]
		}
		b.Add(name, v)
	}
	b.Sort()
	return b.Labels()
}

func randFloat(r *rand.Rand) float64 {
	switch r.IntN(12) {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return math.NaN()
	case 3:
		return math.Float64frombits(value.StaleNaN)
	case 4:
		return math.Inf(1)
	case 5:
		return math.Inf(-1)
	case 6:
		return math.SmallestNonzeroFloat64
	case 7:
		return -math.MaxFloat64
	default:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10))
	}
}

func randTimestamp(r *rand.Rand) int64 {
	switch r.IntN(8) {
	case 0:
		return 0
	case 1:
		return -1 - r.Int64N(1<<40)
	case 2:
		return math.MinInt64
	case 3:
		return math.MaxInt64
	case 4:
		return r.Int64N(128)
	default:
		return 1_700_000_000_000 + r.Int64N(1<<32)
	}
}

func randSpans(r *rand.Rand) ([]histogram.Span, int) {
	n := r.IntN(4)
	if n == 0 {
		if r.IntN(2) == 0 {
			return nil, 0
		}
		return []histogram.Span{}, 0
	}
	spans := make([]histogram.Span, n)
	total := 0
	for i := range spans {
		spans[i].Offset = int32(r.IntN(20) - 10)
		if r.IntN(10) == 0 {
			spans[i].Offset = math.MinInt32
		}
		spans[i].Length = uint32(r.IntN(6))
		total += int(spans[i].Length)
	}
	return spans, total
}

func randSchemaAndCustom(r *rand.Rand) (int32, []float64) {
	if r.IntN(4) == 0 {
		cv := make([]float64, 1+r.IntN(6))
		for i := range cv {
			cv[i] = float64(i) * 0.25
		}
		return histogram.CustomBucketsSchema, cv
	}
	return int32(r.IntN(13) - 4), nil
}

func randHistogram(r *rand.Rand) *histogram.Histogram {
	h := &histogram.Histogram{
		CounterResetHint: histogram.CounterResetHint(r.IntN(4)),
		Count:            r.Uint64N(1 << uint(r.IntN(64))),
		ZeroCount:        r.Uint64N(1 << uint(r.IntN(40))),
		Sum:              randFloat(r),
	}
	if r.IntN(2) == 0 {
		h.ZeroThreshold = randFloat(r)
	}
	h.Schema, h.CustomValues = randSchemaAndCustom(r)
	var n int
	h.PositiveSpans, n = randSpans(r)
	for range n {
		h.PositiveBuckets = append(h.PositiveBuckets, r.Int64N(1<<40)-(1<<39))
	}
	h.NegativeSpans, n = randSpans(r)
	for range n {
		h.NegativeBuckets = append(h.NegativeBuckets, r.Int64N(1000)-500)
	}
	return h
}

func randFloatHistogram(r *rand.Rand) *histogram.FloatHistogram {
	h := &histogram.FloatHistogram{
		CounterResetHint: histogram.CounterResetHint(r.IntN(4)),
		Count:            randFloat(r),
		ZeroCount:        randFloat(r),
		Sum:              randFloat(r),
	}
	if r.IntN(2) == 0 {
		h.ZeroThreshold = randFloat(r)
	}
	h.Schema, h.CustomValues = randSchemaAndCustom(r)
	var n int
	h.PositiveSpans, n = randSpans(r)
	for range n {
		h.PositiveBuckets = append(h.PositiveBuckets, randFloat(r))
	}
	h.NegativeSpans, n = randSpans(r)
	for range n {
		h.NegativeBuckets = append(h.NegativeBuckets, randFloat(r))
	}
	return h
}

var metricTypes = []model.MetricType{
	model.MetricTypeCounter, model.MetricTypeGauge, model.MetricTypeHistogram,
	model.MetricTypeGaugeHistogram, model.MetricTypeSummary, model.MetricTypeInfo,
	model.MetricTypeStateset, model.MetricTypeUnknown, "", "Counter", "GAUGE", "bogus",
}

// op is one call of a random request.
type op struct {
	kind       int // 0 sample, 1 histogram, 2 float histogram, 3 exemplar, 4 metadata
	series     int
	t, st      int64
	v          float64
	h          *histogram.Histogram
	fh         *histogram.FloatHistogram
	exLabels   labels.Labels
	family     string
	typ        string
	help, unit string
}

type testSeries struct {
	ls              labels.Labels
	typ, help, unit string // RW2 metadata
	hasMeta         bool
}

func randRequest(r *rand.Rand, nSeries, nOps int) ([]testSeries, []op) {
	series := make([]testSeries, nSeries)
	for i := range series {
		series[i].ls = randLabels(r, 12)
		if r.IntN(2) == 0 {
			series[i].hasMeta = true
			series[i].typ = string(metricTypes[r.IntN(len(metricTypes))])
			if r.IntN(3) > 0 {
				series[i].help = randString(r, 40)
			}
			if r.IntN(3) == 0 {
				series[i].unit = []string{"seconds", "bytes", "job"}[r.IntN(3)]
			}
		}
	}
	ops := make([]op, nOps)
	for i := range ops {
		o := &ops[i]
		o.series = r.IntN(nSeries)
		o.t, o.st, o.v = randTimestamp(r), 0, randFloat(r)
		if r.IntN(3) == 0 {
			o.st = randTimestamp(r)
		}
		switch k := r.IntN(10); {
		case k < 5:
			o.kind = 0
		case k == 5:
			o.kind, o.h = 1, randHistogram(r)
		case k == 6:
			o.kind, o.fh = 2, randFloatHistogram(r)
		case k == 7:
			o.kind, o.exLabels = 3, randLabels(r, 3)
			if r.IntN(2) == 0 { // reuse series strings
				o.exLabels = series[r.IntN(nSeries)].ls
			}
		default:
			o.kind = 4
			o.family = randString(r, 20)
			if r.IntN(5) == 0 {
				o.family = ""
			}
			o.typ = string(metricTypes[r.IntN(len(metricTypes))])
			o.help, o.unit = randString(r, 50), ""
			if r.IntN(2) == 0 {
				o.unit = "seconds"
			}
		}
	}
	return series, ops
}

func TestAppendRW1LabelsMatchesGogo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		ls := randLabels(r, 15)
		want, err := (&prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)}).Marshal()
		require.NoError(t, err)
		got := appendRW1Labels(nil, ls)
		require.True(t, bytes.Equal(want, got), "labels %v", ls)
	}
	// Empty strings are left out as gogo leaves them out, though no valid
	// series has them.
	ls := labels.FromStrings("", "v", "n", "")
	want, err := (&prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)}).Marshal()
	require.NoError(t, err)
	require.Equal(t, want, appendRW1Labels([]byte{}, ls))
	require.Empty(t, appendRW1Labels(nil, labels.EmptyLabels()))
}

func TestRW1EncoderMatchesGogo(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var enc rw1Encoder // reused: each round checks Reset too
	for round := range 300 {
		series, ops := randRequest(r, 1+r.IntN(20), r.IntN(60))
		pre := make([][]byte, len(series))
		for i, s := range series {
			pre[i] = appendRW1Labels(nil, s.ls)
		}
		enc.Reset()
		var want prompb.WriteRequest
		var nS, nH, nE, nM int
		for _, o := range ops {
			lbls := prompb.FromLabels(series[o.series].ls, nil)
			switch o.kind {
			case 0:
				enc.AddSample(pre[o.series], o.t, o.v)
				want.Timeseries = append(want.Timeseries, prompb.TimeSeries{Labels: lbls, Samples: []prompb.Sample{{Value: o.v, Timestamp: o.t}}})
				nS++
			case 1:
				enc.AddHistogram(pre[o.series], o.t, o.h)
				want.Timeseries = append(want.Timeseries, prompb.TimeSeries{Labels: lbls, Histograms: []prompb.Histogram{prompb.FromIntHistogram(o.t, o.h)}})
				nH++
			case 2:
				enc.AddFloatHistogram(pre[o.series], o.t, o.fh)
				want.Timeseries = append(want.Timeseries, prompb.TimeSeries{Labels: lbls, Histograms: []prompb.Histogram{prompb.FromFloatHistogram(o.t, o.fh)}})
				nH++
			case 3:
				enc.AddExemplar(pre[o.series], o.exLabels, o.t, o.v)
				want.Timeseries = append(want.Timeseries, prompb.TimeSeries{Labels: lbls, Exemplars: []prompb.Exemplar{{
					Labels: prompb.FromLabels(o.exLabels, nil), Value: o.v, Timestamp: o.t,
				}}})
				nE++
			case 4:
				enc.AddMetadata(o.family, o.typ, o.help, o.unit)
				want.Metadata = append(want.Metadata, prompb.MetricMetadata{
					Type:             prompb.FromMetadataType(model.MetricType(o.typ)),
					MetricFamilyName: o.family, Help: o.help, Unit: o.unit,
				})
				nM++
			}
		}
		got := enc.Bytes()
		wantBytes, err := want.Marshal()
		require.NoError(t, err)
		if !bytes.Equal(wantBytes, got) {
			t.Fatalf("round %d: bytes differ from gogo Marshal (%d vs %d bytes)", round, len(got), len(wantBytes))
		}
		s, h, e, m := enc.Counts()
		require.Equal(t, [4]int{nS, nH, nE, nM}, [4]int{s, h, e, m})

		// Decoding gives back the inputs.
		var dec prompb.WriteRequest
		require.NoError(t, proto.Unmarshal(got, &dec))
		require.Len(t, dec.Timeseries, len(ops)-nM)
		require.Len(t, dec.Metadata, nM)
		i, mi := 0, 0
		for _, o := range ops {
			if o.kind == 4 {
				md := dec.Metadata[mi]
				mi++
				require.Equal(t, o.family, md.MetricFamilyName)
				require.Equal(t, o.help, md.Help)
				require.Equal(t, o.unit, md.Unit)
				require.Equal(t, prompb.FromMetadataType(model.MetricType(o.typ)), md.Type)
				continue
			}
			ts := dec.Timeseries[i]
			i++
			sb := labels.NewScratchBuilder(0)
			require.Equal(t, series[o.series].ls, ts.ToLabels(&sb, nil))
			switch o.kind {
			case 0:
				require.Len(t, ts.Samples, 1)
				requireSameFloat(t, o.v, ts.Samples[0].Value)
				require.Equal(t, o.t, ts.Samples[0].Timestamp)
			case 1:
				require.Len(t, ts.Histograms, 1)
				require.Equal(t, o.t, ts.Histograms[0].Timestamp)
				requireSameHistogram(t, o.h.ToFloat(nil), ts.Histograms[0].ToIntHistogram().ToFloat(nil))
			case 2:
				require.Len(t, ts.Histograms, 1)
				require.True(t, ts.Histograms[0].IsFloatHistogram())
				requireSameHistogram(t, o.fh, ts.Histograms[0].ToFloatHistogram())
			case 3:
				require.Len(t, ts.Exemplars, 1)
				ex := ts.Exemplars[0].ToExemplar(&sb, nil)
				testkit.RequireLabels(t, o.exLabels, ex.Labels)
				requireSameFloat(t, o.v, ex.Value)
				require.Equal(t, o.t, ex.Ts)
			}
		}
	}
}

func TestRW1EncoderZeroValueAndEdges(t *testing.T) {
	var enc rw1Encoder
	require.Empty(t, enc.Bytes())
	lb := appendRW1Labels(nil, labels.FromStrings("__name__", "up"))
	enc.AddSample(lb, 0, 0)
	want, err := proto.Marshal(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{}},
	}}})
	require.NoError(t, err)
	require.Equal(t, want, enc.Bytes())
	require.Equal(t, want, enc.Bytes(), "Bytes is repeatable")
	enc.AddMetadata("up", "gauge", "", "")
	enc.AddMetadata("", "", "", "")
	want, err = proto.Marshal(&prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{}}}},
		Metadata:   []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up"}, {}},
	})
	require.NoError(t, err)
	require.Equal(t, want, enc.Bytes())
	enc.Reset()
	require.Empty(t, enc.Bytes())
}

func requireSameFloat(t *testing.T, want, got float64) {
	t.Helper()
	if want == 0 { // gogo leaves out -0.0: it arrives as +0
		want = 0
	}
	require.Equal(t, math.Float64bits(want), math.Float64bits(got), "want %v got %v", want, got)
}

func requireSameHistogram(t *testing.T, want, got *histogram.FloatHistogram) {
	t.Helper()
	require.Equal(t, want.CounterResetHint, got.CounterResetHint)
	require.Equal(t, want.Schema, got.Schema)
	requireSameFloat(t, want.ZeroThreshold, got.ZeroThreshold)
	// Counts are oneof members: written even when zero, so -0.0 survives.
	require.Equal(t, math.Float64bits(want.ZeroCount), math.Float64bits(got.ZeroCount))
	require.Equal(t, math.Float64bits(want.Count), math.Float64bits(got.Count))
	requireSameFloat(t, want.Sum, got.Sum)
	require.Equal(t, len(want.PositiveSpans), len(got.PositiveSpans))
	for i := range want.PositiveSpans {
		require.Equal(t, want.PositiveSpans[i], got.PositiveSpans[i])
	}
	require.Equal(t, len(want.NegativeSpans), len(got.NegativeSpans))
	for i := range want.NegativeSpans {
		require.Equal(t, want.NegativeSpans[i], got.NegativeSpans[i])
	}
	require.Equal(t, len(want.PositiveBuckets), len(got.PositiveBuckets))
	for i := range want.PositiveBuckets {
		require.Equal(t, math.Float64bits(want.PositiveBuckets[i]), math.Float64bits(got.PositiveBuckets[i])) // packed: -0.0 survives
	}
	require.Equal(t, len(want.NegativeBuckets), len(got.NegativeBuckets))
	for i := range want.NegativeBuckets {
		require.Equal(t, math.Float64bits(want.NegativeBuckets[i]), math.Float64bits(got.NegativeBuckets[i])) // packed: -0.0 survives
	}
	require.Equal(t, len(want.CustomValues), len(got.CustomValues))
	for i := range want.CustomValues {
		require.Equal(t, math.Float64bits(want.CustomValues[i]), math.Float64bits(got.CustomValues[i])) // packed: -0.0 survives
	}
}

// rw2Oracle builds the writev2.Request the way upstream's QueueManager
// does (populateV2TimeSeries): help and unit are symbolized first, then
// the series labels, then exemplar labels.
type rw2Oracle struct {
	st  writev2.SymbolsTable
	req writev2.Request
}

func (o *rw2Oracle) series(s testSeries) writev2.TimeSeries {
	var ts writev2.TimeSeries
	if s.hasMeta {
		ts.Metadata.Type = writev2.FromMetadataType(model.MetricType(s.typ))
		ts.Metadata.HelpRef = o.st.Symbolize(s.help)
		ts.Metadata.UnitRef = o.st.Symbolize(s.unit)
	}
	ts.LabelsRefs = o.st.SymbolizeLabels(s.ls, nil)
	return ts
}

func TestRW2EncoderMatchesGogo(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tab := newTestTable()
	in := tab.strings
	_ = in
	enc := newRW2Encoder(tab)
	carried := 0
	for round := range 300 {
		series, ops := randRequest(r, 1+r.IntN(20), r.IntN(60))
		pre := make([]*encodedSeries, len(series))
		for i, s := range series {
			pre[i] = internSeries(tab, s.ls)
			if s.hasMeta {
				pre[i] = withMeta(tab, pre[i], s.typ, s.help, s.unit)
			}
		}
		if round%7 == 3 { // some exemplar strings become interned later
			for _, o := range ops {
				in.InternLabels(nil, o.exLabels)
			}
		}
		enc.Reset()
		o := rw2Oracle{st: writev2.NewSymbolTable()}
		var nS, nH, nE int
		var kept []op
		for _, op := range ops {
			s := pre[op.series]
			switch op.kind {
			case 0:
				enc.AddSample(s, op.t, op.v, op.st)
				ts := o.series(series[op.series])
				ts.Samples = []writev2.Sample{{Value: op.v, Timestamp: op.t, StartTimestamp: op.st}}
				o.req.Timeseries = append(o.req.Timeseries, ts)
				nS++
			case 1:
				enc.AddHistogram(s, op.t, op.h, op.st)
				ts := o.series(series[op.series])
				ts.Histograms = []writev2.Histogram{writev2.FromIntHistogram(op.st, op.t, op.h)}
				o.req.Timeseries = append(o.req.Timeseries, ts)
				nH++
			case 2:
				enc.AddFloatHistogram(s, op.t, op.fh, op.st)
				ts := o.series(series[op.series])
				ts.Histograms = []writev2.Histogram{writev2.FromFloatHistogram(op.st, op.t, op.fh)}
				o.req.Timeseries = append(o.req.Timeseries, ts)
				nH++
			case 3:
				enc.AddExemplar(s, op.exLabels, op.t, op.v)
				ts := o.series(series[op.series])
				ts.Exemplars = []writev2.Exemplar{{LabelsRefs: o.st.SymbolizeLabels(op.exLabels, nil), Value: op.v, Timestamp: op.t}}
				o.req.Timeseries = append(o.req.Timeseries, ts)
				nE++
			default:
				continue // RW2 has no separate metadata
			}
			kept = append(kept, op)
		}
		o.req.Symbols = o.st.Symbols()
		got := enc.Bytes()
		want, err := o.req.Marshal()
		require.NoError(t, err)
		if enc.Carried() {
			// The table started with the last request's strings: the
			// bytes differ from upstream's, the decoded request must not.
			carried++
		} else if !bytes.Equal(want, got) {
			var dec writev2.Request
			_ = proto.Unmarshal(got, &dec)
			t.Fatalf("round %d: bytes differ from gogo Marshal (%d vs %d bytes)\nsymbols got  %q\nsymbols want %q", round, len(got), len(want), dec.Symbols, o.req.Symbols)
		}
		s, h, e := enc.Counts()
		require.Equal(t, [3]int{nS, nH, nE}, [3]int{s, h, e})

		// Decoding gives back the inputs.
		var dec writev2.Request
		require.NoError(t, proto.Unmarshal(got, &dec))
		require.Equal(t, "", dec.Symbols[0])
		seen := map[string]bool{}
		for _, s := range dec.Symbols {
			require.False(t, seen[s], "duplicate symbol %q", s)
			seen[s] = true
		}
		require.Len(t, dec.Timeseries, len(kept))
		sb := labels.NewScratchBuilder(0)
		for i, op := range kept {
			ts := dec.Timeseries[i]
			ser := series[op.series]
			ls, err := ts.ToLabels(&sb, dec.Symbols)
			require.NoError(t, err)
			testkit.RequireLabels(t, ser.ls, ls)
			if ser.hasMeta {
				require.Equal(t, writev2.FromMetadataType(model.MetricType(ser.typ)), ts.Metadata.Type)
				require.Equal(t, ser.help, dec.Symbols[ts.Metadata.HelpRef])
				require.Equal(t, ser.unit, dec.Symbols[ts.Metadata.UnitRef])
			} else {
				require.Equal(t, writev2.Metadata{}, ts.Metadata)
			}
			switch op.kind {
			case 0:
				require.Len(t, ts.Samples, 1)
				requireSameFloat(t, op.v, ts.Samples[0].Value)
				require.Equal(t, op.t, ts.Samples[0].Timestamp)
				require.Equal(t, op.st, ts.Samples[0].StartTimestamp)
			case 1:
				require.Len(t, ts.Histograms, 1)
				require.Equal(t, op.st, ts.Histograms[0].StartTimestamp)
				requireSameHistogram(t, op.h.ToFloat(nil), ts.Histograms[0].ToIntHistogram().ToFloat(nil))
			case 2:
				require.Len(t, ts.Histograms, 1)
				requireSameHistogram(t, op.fh, ts.Histograms[0].ToFloatHistogram())
			case 3:
				require.Len(t, ts.Exemplars, 1)
				ex, err := ts.Exemplars[0].ToExemplar(&sb, dec.Symbols)
				require.NoError(t, err)
				testkit.RequireLabels(t, op.exLabels, ex.Labels)
				requireSameFloat(t, op.v, ex.Value)
				require.Equal(t, op.t, ex.Ts)
			}
		}
	}
	// Both kinds of request were checked.
	require.NotZero(t, carried, "no request carried its table over")
	require.Less(t, carried, 300, "every request carried its table over")
}

func TestRW2EncoderEmptyAndGenerations(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	enc := newRW2Encoder(tab)
	want, err := (&writev2.Request{Symbols: []string{""}}).Marshal()
	require.NoError(t, err)
	require.Equal(t, want, enc.Bytes())

	la, lb := labels.FromStrings("__name__", "a", "job", "x"), labels.FromStrings("__name__", "b", "job", "x")
	a, b := internSeries(tab, la), internSeries(tab, lb)
	// Many requests: every one has its own symbol table, in its own order.
	for i := range 1000 {
		enc.Reset()
		first, second := a, b
		lfirst, lsecond := la, lb
		if i%2 == 1 {
			first, second = second, first
			lfirst, lsecond = lsecond, lfirst
		}
		enc.AddSample(first, 1, 1, 0)
		enc.AddSample(second, 2, 2, 0)
		st := writev2.NewSymbolTable()
		req := writev2.Request{}
		for j, ls := range []labels.Labels{lfirst, lsecond} {
			req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(ls, nil),
				Samples:    []writev2.Sample{{Value: float64(j + 1), Timestamp: int64(j + 1)}},
			})
		}
		req.Symbols = st.Symbols()
		want, err := req.Marshal()
		require.NoError(t, err)
		require.Equal(t, want, enc.Bytes())
	}
}

func TestInterner(t *testing.T) {
	var in interner
	require.Equal(t, uint32(0), in.Intern(""))
	require.Equal(t, 1, in.Len())
	ids := map[string]uint32{}
	for i := range 10000 {
		s := strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		id := in.Intern(s)
		if prev, ok := ids[s]; ok {
			require.Equal(t, prev, id)
		}
		ids[s] = id
	}
	for s, id := range ids {
		require.Equal(t, s, in.String(id))
		got, ok := in.Lookup(s)
		require.True(t, ok)
		require.Equal(t, id, got)
	}
	_, ok := in.Lookup("never")
	require.False(t, ok)
	require.Equal(t, len(ids)+1, in.Len())
}

// TestRW2ConcurrentInterning runs encoders while series are interned, for
// the race detector.
func TestRW2ConcurrentInterning(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	ch := make(chan *encodedSeries, 16)
	done := make(chan struct{})
	for w := range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			enc := newRW2Encoder(tab)
			for s := range ch {
				enc.Reset()
				enc.AddSample(s, 1, 1, 0)
				enc.AddExemplar(s, labels.FromStrings("trace_id", "t"+string(rune('0'+w))), 1, 1)
				var dec writev2.Request
				if err := proto.Unmarshal(enc.Bytes(), &dec); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 3000 {
		ch <- internSeries(tab, randLabels(r, 6))
	}
	close(ch)
	for range 3 {
		<-done
	}
}

// TestRW2EncoderWideLengths covers lengths that need more than the one
// byte the encoder reserves: many labels, symbol indexes of 3 bytes, large
// bodies, many exemplar labels.
func TestRW2EncoderWideLengths(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	enc := newRW2Encoder(tab)
	mk := func(prefix string, n int) labels.Labels {
		b := labels.NewScratchBuilder(n)
		for i := range n {
			b.Add(fmt.Sprintf("%s_n%05d", prefix, i), fmt.Sprintf("%s_v%05d", prefix, i))
		}
		b.Sort()
		return b.Labels()
	}
	big, wide, ex := mk("big", 9000), mk("wide", 70), mk("ex", 60)
	sBig, sWide := internSeries(tab, big), internSeries(tab, wide)
	sWide = withMeta(tab, sWide, "gauge", strings.Repeat("h", 300), "bytes")

	h := &histogram.Histogram{Count: 1, PositiveSpans: []histogram.Span{{Offset: 0, Length: 40}}, PositiveBuckets: make([]int64, 40)}
	enc.AddSample(sBig, 1, 1, 1)
	enc.AddSample(sWide, 2, 2, 0)
	enc.AddHistogram(sWide, 3, h, 0)
	enc.AddExemplar(sWide, ex, 4, 4)

	st := writev2.NewSymbolTable()
	var req writev2.Request
	ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(big, nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1, StartTimestamp: 1}}}
	req.Timeseries = append(req.Timeseries, ts)
	wideTS := func() writev2.TimeSeries {
		var ts writev2.TimeSeries
		ts.Metadata.Type = writev2.Metadata_METRIC_TYPE_GAUGE
		ts.Metadata.HelpRef = st.Symbolize(strings.Repeat("h", 300))
		ts.Metadata.UnitRef = st.Symbolize("bytes")
		ts.LabelsRefs = st.SymbolizeLabels(wide, nil)
		return ts
	}
	ts = wideTS()
	ts.Samples = []writev2.Sample{{Value: 2, Timestamp: 2}}
	req.Timeseries = append(req.Timeseries, ts)
	ts = wideTS()
	ts.Histograms = []writev2.Histogram{writev2.FromIntHistogram(0, 3, h)}
	req.Timeseries = append(req.Timeseries, ts)
	ts = wideTS()
	ts.Exemplars = []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(ex, nil), Value: 4, Timestamp: 4}}
	req.Timeseries = append(req.Timeseries, ts)
	req.Symbols = st.Symbols()
	want, err := req.Marshal()
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, enc.Bytes()))

	// The same through RW1.
	var enc1 rw1Encoder
	enc1.AddSample(appendRW1Labels(nil, big), 1, 1)
	enc1.AddExemplar(appendRW1Labels(nil, wide), ex, 4, 4)
	want, err = (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: prompb.FromLabels(big, nil), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
		{Labels: prompb.FromLabels(wide, nil), Exemplars: []prompb.Exemplar{{Labels: prompb.FromLabels(ex, nil), Value: 4, Timestamp: 4}}},
	}}).Marshal()
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, enc1.Bytes()))
}

// TestRW2ExemplarStringInternedLater: a string first sent as an exemplar
// label (not interned) and interned afterwards by a new series must not
// appear twice in the symbol table.
func TestRW2ExemplarStringInternedLater(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	enc := newRW2Encoder(tab)
	a := internSeries(tab, labels.FromStrings("__name__", "a"))
	ex := labels.FromStrings("trace_id", "abc")
	enc.AddExemplar(a, ex, 1, 1)
	b := internSeries(tab, labels.FromStrings("__name__", "abc", "trace_id", "x"))
	enc.AddSample(b, 2, 2, 0)
	enc.AddExemplar(b, ex, 3, 3)

	// The oracle, symbolized in call order.
	st := writev2.NewSymbolTable()
	lb := labels.FromStrings("__name__", "abc", "trace_id", "x")
	var req writev2.Request
	ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "a"), nil)}
	ts.Exemplars = []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(ex, nil), Value: 1, Timestamp: 1}}
	req.Timeseries = append(req.Timeseries, ts)
	req.Timeseries = append(req.Timeseries, writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(lb, nil), Samples: []writev2.Sample{{Value: 2, Timestamp: 2}}})
	ts = writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(lb, nil)}
	ts.Exemplars = []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(ex, nil), Value: 3, Timestamp: 3}}
	req.Timeseries = append(req.Timeseries, ts)
	req.Symbols = st.Symbols()
	want, err := req.Marshal()
	require.NoError(t, err)
	require.Equal(t, want, enc.Bytes())
	require.Equal(t, []string{"", "__name__", "a", "trace_id", "abc", "x"}, req.Symbols)
}

// TestInternerRelease: an id is freed when its last holder releases it,
// and then given to another string; ids still held keep their strings.
func TestInternerRelease(t *testing.T) {
	var in interner
	a := in.Intern("a")
	require.Equal(t, a, in.Intern("a"), "a second holder")
	b := in.Intern("b")
	require.Equal(t, 3, in.Live())

	in.Release(a)
	id, ok := in.Lookup("a")
	require.True(t, ok, "one holder left")
	require.Equal(t, a, id)
	in.Release(a)
	_, ok = in.Lookup("a")
	require.False(t, ok)
	require.Equal(t, 2, in.Live())

	c := in.Intern("c")
	require.Equal(t, a, c, "the freed id is reused")
	require.Equal(t, "c", in.String(c))
	require.Equal(t, "b", in.String(b))
	require.Equal(t, 3, in.Len(), "no new id")

	in.Acquire(b)
	in.Release(b, b)
	_, ok = in.Lookup("b")
	require.False(t, ok)
	require.Panics(t, func() { in.Release(b) }, "not held")
	in.Release(0) // the empty string is never freed
	require.Equal(t, "", in.String(0))
}

// TestRW2ExemplarAfterReuse: an exemplar string that was interned once
// but is no longer is sent by value, and a reused id does not lend its old
// string's symbol to the new string.
func TestRW2ExemplarAfterReuse(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	enc := newRW2Encoder(tab)
	old := internSeries(tab, labels.FromStrings("trace_id", "x1"))
	tab.release(old.set)
	s := internSeries(tab, labels.FromStrings("__name__", "m", "job", "j"))
	enc.AddSampleWithExemplars(s, 1, 1, 0, []rw2Exemplar{{Labels: labels.FromStrings("trace_id", "x1"), T: 1, V: 1}})
	var dec writev2.Request
	require.NoError(t, proto.Unmarshal(enc.Bytes(), &dec))
	require.Len(t, dec.Timeseries, 1)
	sb := labels.NewScratchBuilder(0)
	ls, err := dec.Timeseries[0].ToLabels(&sb, dec.Symbols)
	require.NoError(t, err)
	require.Equal(t, labels.FromStrings("__name__", "m", "job", "j"), ls)
	x, err := dec.Timeseries[0].Exemplars[0].ToExemplar(&sb, dec.Symbols)
	require.NoError(t, err)
	testkit.RequireLabels(t, labels.FromStrings("trace_id", "x1"), x.Labels)
}
