package record_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// decodeFunc decodes rec with one Decoder method into a slice that already
// holds one element, checks that the element survives whatever happens, and
// returns how many entries were appended.
type decodeFunc func(t *testing.T, d *record.Decoder, rec []byte) (int, error)

func keepsPrefix[T any](t *testing.T, out []T, err error, first T, eq func(a, b T) bool) int {
	t.Helper()
	require.NotEmpty(t, out, "the existing element was dropped (err %v)", err)
	require.True(t, eq(first, out[0]), "the existing element was changed")
	if err != nil {
		require.Len(t, out, 1, "entries appended despite the error")
	}
	return len(out) - 1
}

func eqSample(a, b record.RefSample) bool { return a == b }

// decoders lists every decode method with the record types it accepts.
var decoders = []struct {
	name   string
	accept []record.Type
	decode decodeFunc
}{
	{"Series", []record.Type{record.Series}, func(t *testing.T, d *record.Decoder, rec []byte) (int, error) {
		first := record.RefSeries{Ref: 1, Labels: labels.FromStrings("a", "b")}
		out, err := d.Series(rec, []record.RefSeries{first})
		return keepsPrefix(t, out, err, first, func(a, b record.RefSeries) bool { return a.Ref == b.Ref && labels.Equal(a.Labels, b.Labels) }), err
	}},
	{"Samples", []record.Type{record.Samples, record.SamplesV2}, func(t *testing.T, d *record.Decoder, rec []byte) (int, error) {
		first := record.RefSample{Ref: 1, T: 2, V: 3}
		out, err := d.Samples(rec, []record.RefSample{first})
		return keepsPrefix(t, out, err, first, eqSample), err
	}},
	{"Tombstones", []record.Type{record.Tombstones}, func(t *testing.T, d *record.Decoder, rec []byte) (int, error) {
		first := record.Stone{Ref: 1, Mint: 2, Maxt: 3}
		out, err := d.Tombstones(rec, []record.Stone{first})
		return keepsPrefix(t, out, err, first, func(a, b record.Stone) bool { return a == b }), err
	}},
	{"Exemplars", []record.Type{record.Exemplars}, func(t *testing.T, d *record.Decoder, rec []byte) (int, error) {
		first := record.RefExemplar{Ref: 1, T: 2, V: 3}
		out, err := d.Exemplars(rec, []record.RefExemplar{first})
		return keepsPrefix(t, out, err, first, func(a, b record.RefExemplar) bool { return a.Ref == b.Ref && a.T == b.T }), err
	}},
	{"MmapMarkers", []record.Type{record.MmapMarkers}, func(t *testing.T, d *record.Decoder, rec []byte) (int, error) {
		first := record.RefMmapMarker{Ref: 1, MmapRef: 2}
		out, err := d.MmapMarkers(rec, []record.RefMmapMarker{first})
		return keepsPrefix(t, out, err, first, func(a, b record.RefMmapMarker) bool { return a == b }), err
	}},
	{"Metadata", []record.Type{record.Metadata}, func(t *testing.T, d *record.Decoder, rec []byte) (int, error) {
		first := record.RefMetadata{Ref: 1, Unit: "u"}
		out, err := d.Metadata(rec, []record.RefMetadata{first})
		return keepsPrefix(t, out, err, first, func(a, b record.RefMetadata) bool { return a == b }), err
	}},
	{"HistogramSamples", []record.Type{record.HistogramSamples, record.CustomBucketsHistogramSamples, record.HistogramSamplesV2}, func(t *testing.T, d *record.Decoder, rec []byte) (int, error) {
		first := record.RefHistogramSample{Ref: 1, T: 2, H: &histogram.Histogram{Count: 3}}
		out, err := d.HistogramSamples(rec, []record.RefHistogramSample{first})
		return keepsPrefix(t, out, err, first, func(a, b record.RefHistogramSample) bool { return a.Ref == b.Ref && a.H == b.H && a.H.Count == 3 }), err
	}},
	{"FloatHistogramSamples", []record.Type{record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples, record.FloatHistogramSamplesV2}, func(t *testing.T, d *record.Decoder, rec []byte) (int, error) {
		first := record.RefFloatHistogramSample{Ref: 1, T: 2, FH: &histogram.FloatHistogram{Count: 3}}
		out, err := d.FloatHistogramSamples(rec, []record.RefFloatHistogramSample{first})
		return keepsPrefix(t, out, err, first, func(a, b record.RefFloatHistogramSample) bool {
			return a.Ref == b.Ref && a.FH == b.FH && a.FH.Count == 3
		}), err
	}},
	{"MinValidTime", []record.Type{record.MinValidTime}, func(_ *testing.T, d *record.Decoder, rec []byte) (int, error) {
		_, err := d.MinValidTime(rec)
		return 1, err
	}},
}

// decoderFor returns the decode function that accepts typ.
func decoderFor(typ record.Type) decodeFunc {
	for _, d := range decoders {
		if slices.Contains(d.accept, typ) {
			return d.decode
		}
	}
	panic(fmt.Sprintf("no decoder for %v", typ))
}

// validRecord is a well-formed record with its entry boundaries: the lengths
// at which a cut leaves a record that still decodes, mapped to the number of
// entries it holds.
type validRecord struct {
	name       string
	rec        []byte
	boundaries map[int]int
}

// prefixRecords encodes the first k entries for every k and records the
// lengths as boundaries. headerOnly adds the length of a V1 record that has
// its base ref and time but no entries, which decodes to nothing.
func prefixRecords(name string, n int, headerOnly bool, enc func(k int) []byte) validRecord {
	v := validRecord{name: name, boundaries: map[int]int{}}
	for k := 0; k <= n; k++ {
		r := enc(k)
		v.boundaries[len(r)] = k
		v.rec = r
	}
	if headerOnly {
		v.boundaries[1+16] = 0
	}
	return v
}

func validRecords() []validRecord {
	g := newGen(7)
	series := g.series(4)
	series = append(series, record.RefSeries{Ref: 3, Labels: labels.FromStrings("__name__", "up", "job", "x")})
	samples := []record.RefSample{{Ref: 1, ST: 0, T: 100, V: 1}, {Ref: 300, ST: 90, T: 200, V: staleNaN}, {Ref: 2, ST: 90, T: -5, V: 2}, {Ref: 5, ST: 7, T: 1 << 40, V: 3}}
	stones := []record.Stone{{Ref: 1, Mint: 2, Maxt: 3000}, {Ref: 1 << 60, Mint: -1, Maxt: 1}}
	exemplars := []record.RefExemplar{{Ref: 1, T: 5, V: 1, Labels: labels.FromStrings("trace_id", "abc")}, {Ref: 9, T: 4, V: 2, Labels: labels.EmptyLabels()}}
	markers := []record.RefMmapMarker{{Ref: 1, MmapRef: 2}, {Ref: 3, MmapRef: 1 << 50}}
	meta := []record.RefMetadata{{Ref: 1, Type: record.Counter, Unit: "seconds", Help: "How long."}, {Ref: 200, Type: record.Gauge}}
	hs := []record.RefHistogramSample{
		{Ref: 1, ST: 3, T: 10, H: &histogram.Histogram{Schema: 2, Count: 5, Sum: 1.5, ZeroCount: 1, ZeroThreshold: 0.001,
			PositiveSpans: []histogram.Span{{Offset: -2, Length: 2}, {Offset: 1, Length: 1}}, PositiveBuckets: []int64{1, 1, -1},
			NegativeSpans: []histogram.Span{{Offset: 0, Length: 1}}, NegativeBuckets: []int64{1}}},
		{Ref: 2, ST: 3, T: 20, H: &histogram.Histogram{Schema: 0, Count: 1}},
		{Ref: 3, ST: 4, T: 30, H: &histogram.Histogram{Schema: histogram.CustomBucketsSchema, Count: 2,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 0}, CustomValues: []float64{1, 5}}},
	}
	fhs := []record.RefFloatHistogramSample{
		{Ref: 1, ST: 3, T: 10, FH: hs[0].H.ToFloat(nil)},
		{Ref: 7, T: 11, FH: hs[1].H.ToFloat(nil)},
		{Ref: 3, ST: 4, T: 30, FH: hs[2].H.ToFloat(nil)},
	}
	exp, custom := hs[:2], hs[2:]
	fexp, fcustom := fhs[:2], fhs[2:]

	v1, v2 := record.Encoder{}, record.Encoder{STStorage: true}
	hist := func(enc record.Encoder, hs []record.RefHistogramSample, wantCustom bool) func(int) []byte {
		return func(k int) []byte {
			rec, crec := enc.HistogramSamples(nil, hs[:k])
			if wantCustom {
				if k == 0 {
					return []byte{byte(record.CustomBucketsHistogramSamples)}
				}
				return crec
			}
			return rec
		}
	}
	fhist := func(enc record.Encoder, hs []record.RefFloatHistogramSample, wantCustom bool) func(int) []byte {
		return func(k int) []byte {
			rec, crec := enc.FloatHistogramSamples(nil, hs[:k])
			if wantCustom {
				if k == 0 {
					return []byte{byte(record.CustomBucketsFloatHistogramSamples)}
				}
				return crec
			}
			return rec
		}
	}
	return []validRecord{
		prefixRecords("series", len(series), false, func(k int) []byte { return v1.Series(nil, series[:k]) }),
		prefixRecords("samples", len(samples), true, func(k int) []byte { return v1.Samples(nil, samples[:k]) }),
		prefixRecords("samples_v2", len(samples), false, func(k int) []byte { return v2.Samples(nil, samples[:k]) }),
		prefixRecords("tombstones", len(stones), false, func(k int) []byte { return v1.Tombstones(nil, stones[:k]) }),
		prefixRecords("exemplars", len(exemplars), true, func(k int) []byte { return v1.Exemplars(nil, exemplars[:k]) }),
		prefixRecords("mmapmarkers", len(markers), false, func(k int) []byte { return v1.MmapMarkers(nil, markers[:k]) }),
		prefixRecords("metadata", len(meta), false, func(k int) []byte { return v1.Metadata(nil, meta[:k]) }),
		prefixRecords("histogram_samples", len(exp), true, hist(v1, exp, false)),
		prefixRecords("custom_buckets_histogram_samples", len(custom), true, hist(v1, custom, true)),
		prefixRecords("histogram_samples_v2", len(hs), false, hist(v2, hs, false)),
		prefixRecords("float_histogram_samples", len(fexp), true, fhist(v1, fexp, false)),
		prefixRecords("custom_buckets_float_histogram_samples", len(fcustom), true, fhist(v1, fcustom, true)),
		prefixRecords("float_histogram_samples_v2", len(fhs), false, fhist(v2, fhs, false)),
		{name: "min_valid_time", rec: v1.MinValidTime(nil, -12345), boundaries: map[int]int{}},
	}
}

func TestValidRecordsCoverAllTypes(t *testing.T) {
	seen := map[record.Type]bool{}
	var d record.Decoder
	for _, v := range validRecords() {
		typ := d.TypeOf(v.rec)
		require.Equal(t, v.name, typ.String())
		seen[typ] = true
		n, err := decoderFor(typ)(t, &d, v.rec)
		require.NoError(t, err)
		if want, ok := v.boundaries[len(v.rec)]; ok {
			require.Equal(t, want, n)
		}
	}
	for typ := record.Series; typ <= record.MinValidTime; typ++ {
		require.True(t, seen[typ], "no valid record of type %v", typ)
	}
}

// TestTruncated cuts every valid record at every byte. A cut at an entry
// boundary leaves a shorter valid record; any other cut must fail with
// ErrShortRecord.
func TestTruncated(t *testing.T) {
	for _, v := range validRecords() {
		t.Run(v.name, func(t *testing.T) {
			decode := decoderFor(record.Type(v.rec[0]))
			for cut := range len(v.rec) {
				var d record.Decoder
				n, err := decode(t, &d, v.rec[:cut])
				if k, ok := v.boundaries[cut]; ok && cut > 0 {
					require.NoError(t, err, "cut at %d", cut)
					require.Equal(t, k, n, "cut at %d", cut)
					continue
				}
				require.ErrorIs(t, err, record.ErrShortRecord, "cut at %d of %d", cut, len(v.rec))
			}
		})
	}
}

// TestTrailingGarbage appends a stray byte to every valid record.
func TestTrailingGarbage(t *testing.T) {
	for _, v := range validRecords() {
		for _, junk := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff} {
			t.Run(fmt.Sprintf("%s/%#x", v.name, junk), func(t *testing.T) {
				var d record.Decoder
				_, err := decoderFor(record.Type(v.rec[0]))(t, &d, append(slices.Clone(v.rec), junk))
				require.Error(t, err)
				if v.rec[0] == byte(record.MinValidTime) {
					require.ErrorIs(t, err, record.ErrTrailingBytes)
				} else {
					require.ErrorIs(t, err, record.ErrShortRecord)
				}
			})
		}
	}
}

// TestWrongAndUnknownTypes gives every decoder every type byte it does not
// accept, and an empty record.
func TestWrongAndUnknownTypes(t *testing.T) {
	valid := map[record.Type][]byte{}
	for _, v := range validRecords() {
		valid[record.Type(v.rec[0])] = v.rec
	}
	for _, dc := range decoders {
		t.Run(dc.name, func(t *testing.T) {
			var d record.Decoder
			_, err := dc.decode(t, &d, nil)
			require.ErrorIs(t, err, record.ErrShortRecord)
			_, err = dc.decode(t, &d, []byte{})
			require.ErrorIs(t, err, record.ErrShortRecord)

			for b := range 256 {
				typ := record.Type(b)
				if slices.Contains(dc.accept, typ) {
					continue
				}
				rec := []byte{byte(b), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
				if r, ok := valid[typ]; ok {
					rec = r
				}
				_, err := dc.decode(t, &d, rec)
				require.Error(t, err, "type byte %d", b)
				if d.TypeOf(rec) == record.Unknown {
					require.True(t, record.IsUnknownType(err), "type byte %d: %v", b, err)
					var ute record.UnknownTypeError
					require.ErrorAs(t, err, &ute)
					require.Equal(t, byte(b), ute.Type)
					require.NotErrorIs(t, err, record.ErrWrongType)
				} else {
					require.ErrorIs(t, err, record.ErrWrongType, "type byte %d", b)
					require.False(t, record.IsUnknownType(err))
				}
			}
		})
	}
}

func TestTypeOf(t *testing.T) {
	var d record.Decoder
	require.Equal(t, record.Unknown, d.TypeOf(nil))
	require.Equal(t, record.Unknown, d.TypeOf([]byte{}))
	for b := range 256 {
		want := record.Unknown
		if b >= 1 && b <= 14 {
			want = record.Type(b)
		}
		require.Equal(t, want, d.TypeOf([]byte{byte(b), 1, 2}), "type byte %d", b)
	}
	require.Equal(t, "unknown", record.Unknown.String())
	require.Equal(t, "record: unknown record type 200", record.UnknownTypeError{Type: 200}.Error())
	require.False(t, record.IsUnknownType(nil))
	require.False(t, record.IsUnknownType(record.ErrShortRecord))
	require.True(t, record.IsUnknownType(fmt.Errorf("wrapped: %w", record.UnknownTypeError{Type: 1})))
}

// be64 returns x as 8 big-endian bytes.
func be64(x uint64) []byte {
	return []byte{byte(x >> 56), byte(x >> 48), byte(x >> 40), byte(x >> 32), byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}
}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// Handcrafted malformed records, each aimed at one check of the decoders.
// Several of them make upstream's decoder panic, allocate without bound or
// loop for a very long time.
func TestMalformed(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f} // 2^63-1
	maxU64 := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	overlong := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}
	tenthTooBig := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}
	// histBody is an integer histogram up to its spans: hint, schema, zero
	// threshold, zero count, count, sum.
	histBody := func(schema byte) []byte { return cat([]byte{0, schema}, be64(0), []byte{0, 0}, be64(0)) }
	floatBody := func(schema byte) []byte { return cat([]byte{0, schema}, be64(0), be64(0), be64(0), be64(0)) }
	v1Header := cat(be64(1), be64(100))

	cases := []struct {
		name string
		rec  []byte
		want error // nil: any error
	}{
		{"series/huge label count", cat([]byte{1}, be64(1), huge), record.ErrShortRecord},
		{"series/huge name length", cat([]byte{1}, be64(1), []byte{1}, maxU64), record.ErrShortRecord},
		{"series/2^63 name length", cat([]byte{1}, be64(1), []byte{1}, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, []byte("abc")), record.ErrShortRecord},
		{"series/value cut", cat([]byte{1}, be64(1), []byte{1, 1, 'a', 5, 'b'}), record.ErrShortRecord},
		{"samples/overlong varint", cat([]byte{2}, v1Header, overlong, []byte{0}, be64(0)), record.ErrBadVarint},
		{"samples/tenth byte too big", cat([]byte{2}, v1Header, tenthTooBig, []byte{0}, be64(0)), record.ErrBadVarint},
		{"samples/header cut", cat([]byte{2}, be64(1), []byte{0, 0}), record.ErrShortRecord},
		{"samples_v2/no value", []byte{11, 2, 2, 0}, record.ErrShortRecord},
		{"samples_v2/explicit st cut", cat([]byte{11, 2, 2, 0}, be64(0), []byte{2, 2, 2}), record.ErrShortRecord},
		{"exemplars/huge label count", cat([]byte{4}, v1Header, []byte{0, 0}, be64(0), huge), record.ErrShortRecord},
		{"metadata/huge field count", []byte{6, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}, record.ErrShortRecord},
		{"metadata/field count beyond data", []byte{6, 1, 1, 3, 1, 'a', 1, 'b'}, record.ErrShortRecord},
		{"metadata/huge value length", cat([]byte{6, 1, 1, 1, 4, 'U', 'N', 'I', 'T'}, maxU64), record.ErrShortRecord},
		{"tombstones/maxt missing", cat([]byte{3}, be64(1), []byte{2}), record.ErrShortRecord},
		{"mmapmarkers/half entry", cat([]byte{5}, be64(1), []byte{1, 2, 3}), record.ErrShortRecord},
		{"min_valid_time/short", []byte{14, 1, 2, 3}, record.ErrShortRecord},
		{"min_valid_time/long", cat([]byte{14}, be64(5), []byte{0}), record.ErrTrailingBytes},
		{"histogram/huge span count", cat([]byte{7}, v1Header, []byte{0, 0}, histBody(0), huge), record.ErrShortRecord},
		{"histogram/huge bucket count", cat([]byte{7}, v1Header, []byte{0, 0}, histBody(0), []byte{0, 0}, huge), record.ErrShortRecord},
		{"histogram/huge custom bound count", cat([]byte{9}, v1Header, []byte{0, 0}, histBody(105), []byte{0, 0, 0, 0}, huge), record.ErrShortRecord},
		{"histogram/custom bounds cut", cat([]byte{9}, v1Header, []byte{0, 0}, histBody(105), []byte{0, 0, 0, 0, 2}, be64(0)), record.ErrShortRecord},
		{"histogram_v2/header only", []byte{12, 2, 2, 2}, record.ErrShortRecord},
		{"histogram_v2/st marker cut", cat([]byte{12, 2, 2, 2}, histBody(0), []byte{0, 0, 0, 0}, []byte{2, 2}), record.ErrShortRecord},
		{"float_histogram/huge bucket count", cat([]byte{8}, v1Header, []byte{0, 0}, floatBody(0), []byte{0, 0}, huge), record.ErrShortRecord},
		{"float_histogram/buckets cut", cat([]byte{8}, v1Header, []byte{0, 0}, floatBody(0), []byte{0, 0, 2}, be64(0)), record.ErrShortRecord},
		{"float_histogram_v2/header only", []byte{13, 2, 2, 2}, record.ErrShortRecord},
		// Schema 10 (varint 20) must be reduced to 8, which fails when the
		// spans promise more buckets than there are.
		{"histogram/reserved schema, spans without buckets", cat([]byte{7}, v1Header, []byte{0, 0}, histBody(20), []byte{1, 0, 5, 0, 0, 0}), nil},
		{"float_histogram/reserved schema, spans without buckets", cat([]byte{8}, v1Header, []byte{0, 0}, floatBody(20), []byte{1, 0, 5, 0, 0, 0}), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d record.Decoder
			n, err := decoderFor(d.TypeOf(c.rec))(t, &d, c.rec)
			require.Error(t, err, "decoded %d entries", n)
			if c.want != nil {
				require.ErrorIs(t, err, c.want)
			}
		})
	}
}

// TestHistogramSchemaRules checks the decoder's schema handling on single
// histograms: unknown schemas are dropped and counted, reserved high ones
// reduced to 8, reserved low ones kept.
func TestHistogramSchemaRules(t *testing.T) {
	mk := func(schema int32) *histogram.Histogram {
		return &histogram.Histogram{Schema: schema, Count: 4,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 4}}, PositiveBuckets: []int64{1, 0, 0, 0}}
	}
	for _, c := range []struct {
		schema, want int32
		kept         bool
	}{
		{8, 8, true}, {-4, -4, true}, {9, 8, true}, {52, 8, true}, {-5, -5, true}, {-9, -9, true},
		{53, 0, false}, {-10, 0, false}, {-52, 0, false}, {-54, 0, false}, {histogram.CustomBucketsSchema, histogram.CustomBucketsSchema, true},
	} {
		for _, st := range []bool{false, true} {
			t.Run(fmt.Sprintf("schema=%d/st=%v", c.schema, st), func(t *testing.T) {
				in := []record.RefHistogramSample{{Ref: 1, T: 1, H: mk(c.schema)}, {Ref: 2, T: 2, H: mk(0)}}
				rec, crec := record.Encoder{STStorage: st}.HistogramSamples(nil, in)
				var d record.Decoder
				var out []record.RefHistogramSample
				for _, r := range [][]byte{rec, crec} {
					if len(r) > 0 {
						var err error
						out, err = d.HistogramSamples(r, out)
						require.NoError(t, err)
					}
				}
				slices.SortFunc(out, func(a, b record.RefHistogramSample) int { return int(a.Ref) - int(b.Ref) })
				if !c.kept {
					require.Len(t, out, 1)
					require.Equal(t, record.Ref(2), out[0].Ref)
					require.Equal(t, uint64(1), d.SkippedHistograms())
					return
				}
				require.Len(t, out, 2)
				require.Equal(t, c.want, out[0].H.Schema)
				require.Zero(t, d.SkippedHistograms())
			})
		}
	}
}

// EachSeries hands over the series Series decodes, reusing one buffer for
// their labels: nothing is allocated once warm, and a damaged record hands
// over the series before the damage.
func TestEachSeries(t *testing.T) {
	g := newGen(41)
	var enc record.Encoder
	var d record.Decoder
	for range 200 {
		in := g.series(40)
		rec := enc.Series(nil, in)
		want, err := d.Series(rec, nil)
		require.NoError(t, err)
		var got []string
		require.NoError(t, d.EachSeries(rec, func(s record.RefSeries) {
			got = append(got, fmt.Sprint(s.Ref, s.Labels.String()))
		}))
		require.Len(t, got, len(want))
		for i := range want {
			require.Equal(t, fmt.Sprint(want[i].Ref, want[i].Labels.String()), got[i])
		}
	}

	in := []record.RefSeries{
		{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "a")},
		{Ref: 2, Labels: labels.FromStrings("__name__", "up", "job", "b")},
	}
	rec := enc.Series(nil, in)
	var refs []record.Ref
	sum := 0
	each := func(s record.RefSeries) { refs = append(refs, s.Ref); sum += s.Labels.Len() }
	require.NoError(t, d.EachSeries(rec, each))
	refs = refs[:0]
	if n := testing.AllocsPerRun(100, func() { refs = refs[:0]; _ = d.EachSeries(rec, each) }); n != 0 {
		t.Fatalf("%v allocations per record, want 0", n)
	}
	refs = refs[:0]
	require.Error(t, d.EachSeries(rec[:len(rec)-3], each))
	require.Equal(t, []record.Ref{1}, refs, "the series before the damage")
	require.Error(t, d.EachSeries([]byte{byte(record.Samples)}, each))
}
