package record_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	upstream "github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// The oracle tests hold this package to upstream's tsdb/record: for random
// contents of every record type, both encoders must produce the same bytes,
// and each decoder must read the other's records back to the input.

const oracleIterations = 25

// upEnc returns upstream's encoder; its methods have pointer receivers.
func upEnc(st bool) *upstream.Encoder { return &upstream.Encoder{EnableSTStorage: st} }

// forEachSeed runs fn for a fixed sequence of seeds, with and without
// start-timestamp storage.
func forEachSeed(t *testing.T, fn func(t *testing.T, g gen, st bool)) {
	for i := range oracleIterations {
		for _, st := range []bool{false, true} {
			seed := uint64(20260 + i)
			t.Run(fmt.Sprintf("seed=%d/st=%v", seed, st), func(t *testing.T) {
				fn(t, newGen(seed), st)
			})
		}
	}
}

func TestOracleSeries(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.series(60)
		want := upEnc(st).Series(toUpSeries(in), nil)
		got := record.Encoder{STStorage: st}.Series(nil, in)
		requireSameBytes(t, want, got, "series")
		requireSameBytes(t, append([]byte("prefix"), want...), record.Encoder{}.Series([]byte("prefix"), in), "series after prefix")

		var dec record.Decoder
		out, err := dec.Series(want, nil)
		require.NoError(t, err)
		require.Equal(t, canonSeries(in), canonSeries(out))

		prefix := []record.RefSeries{{Ref: 7, Labels: labels.FromStrings("a", "b")}}
		out, err = dec.Series(want, prefix)
		require.NoError(t, err)
		require.Equal(t, canonSeries(append(prefix[:1:1], in...)), canonSeries(out))

		upDec := newUpstreamDecoder()
		upOut, err := upDec.Series(got, nil)
		require.NoError(t, err)
		require.Equal(t, canonSeries(in), canonSeries(fromUpSeries(upOut)))
	})
}

func TestOracleSamples(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.samples(300)
		expect := in
		if !st {
			expect = withoutST(in)
		}
		want := upEnc(st).Samples(toUpSamples(in), nil)
		got := record.Encoder{STStorage: st}.Samples(nil, in)
		requireSameBytes(t, want, got, "samples")

		var dec record.Decoder
		out, err := dec.Samples(want, nil)
		require.NoError(t, err)
		require.Equal(t, canonSamples(expect), canonSamples(out))

		// Appending after existing elements, with and without spare room.
		for _, c := range []int{1, 1000} {
			prefix := make([]record.RefSample, 1, c)
			prefix[0] = record.RefSample{Ref: 99, ST: 5, T: 6, V: 7}
			out, err = dec.Samples(want, prefix)
			require.NoError(t, err)
			require.Equal(t, canonSamples(append(prefix[:1:1], expect...)), canonSamples(out))
		}

		upDec := newUpstreamDecoder()
		upOut, err := upDec.Samples(got, nil)
		require.NoError(t, err)
		require.Equal(t, canonSamples(expect), canonSamples(fromUpSamples(upOut)))
	})
}

func TestOracleTombstones(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.stones(60)
		want := upEnc(st).Tombstones(toUpStones(in), nil)
		got := record.Encoder{STStorage: st}.Tombstones(nil, in)
		requireSameBytes(t, want, got, "tombstones")

		var dec record.Decoder
		out, err := dec.Tombstones(want, nil)
		require.NoError(t, err)
		require.Equal(t, nonEmpty(in), nonEmpty(out))

		upDec := newUpstreamDecoder()
		upOut, err := upDec.Tombstones(got, nil)
		require.NoError(t, err)
		require.Equal(t, nonEmpty(in), fromUpStones(upOut))

		// Upstream stones with several intervals become one entry each.
		multi := []tombstones.Stone{{Ref: 3, Intervals: tombstones.Intervals{{Mint: 1, Maxt: 2}, {Mint: 5, Maxt: 9}}}}
		out, err = dec.Tombstones(upEnc(false).Tombstones(multi, nil), nil)
		require.NoError(t, err)
		require.Equal(t, []record.Stone{{Ref: 3, Mint: 1, Maxt: 2}, {Ref: 3, Mint: 5, Maxt: 9}}, out)
	})
}

func TestOracleExemplars(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.exemplars(60)
		want := upEnc(st).Exemplars(toUpExemplars(in), nil)
		got := record.Encoder{STStorage: st}.Exemplars(nil, in)
		requireSameBytes(t, want, got, "exemplars")

		var dec record.Decoder
		out, err := dec.Exemplars(want, nil)
		require.NoError(t, err)
		require.Equal(t, canonExemplars(in), canonExemplars(out))

		upDec := newUpstreamDecoder()
		upOut, err := upDec.Exemplars(got, nil)
		require.NoError(t, err)
		require.Equal(t, canonExemplars(in), canonExemplars(fromUpExemplars(upOut)))
	})
}

func TestOracleMmapMarkers(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.markers(60)
		want := upEnc(st).MmapMarkers(toUpMarkers(in), nil)
		got := record.Encoder{STStorage: st}.MmapMarkers(nil, in)
		requireSameBytes(t, want, got, "mmap markers")

		var dec record.Decoder
		out, err := dec.MmapMarkers(want, nil)
		require.NoError(t, err)
		require.Equal(t, nonEmpty(in), nonEmpty(out))

		upDec := newUpstreamDecoder()
		upOut, err := upDec.MmapMarkers(got, nil)
		require.NoError(t, err)
		require.Equal(t, nonEmpty(in), nonEmpty(fromUpMarkers(upOut)))
	})
}

func TestOracleMetadata(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.metadata(60)
		want := upEnc(st).Metadata(toUpMetadata(in), nil)
		got := record.Encoder{STStorage: st}.Metadata(nil, in)
		requireSameBytes(t, want, got, "metadata")

		var dec record.Decoder
		out, err := dec.Metadata(want, nil)
		require.NoError(t, err)
		require.Equal(t, nonEmpty(in), nonEmpty(out))

		upDec := newUpstreamDecoder()
		upOut, err := upDec.Metadata(got, nil)
		require.NoError(t, err)
		require.Equal(t, nonEmpty(in), nonEmpty(fromUpMetadata(upOut)))
	})
}

// TestOracleMetadataExtraFields checks that fields other than UNIT and HELP
// are skipped, and repeated ones resolved, as upstream does.
func TestOracleMetadataExtraFields(t *testing.T) {
	rec := []byte{byte(record.Metadata)}
	field := func(name, value string) {
		rec = append(rec, byte(len(name)))
		rec = append(rec, name...)
		rec = append(rec, byte(len(value)))
		rec = append(rec, value...)
	}
	rec = append(rec, 5, byte(record.Gauge), 5)
	field("HELP", "first help")
	field("COLOR", "blue")
	field("UNIT", "bytes")
	field("", "")
	field("HELP", "second help")
	rec = append(rec, 6, byte(record.Counter), 0)

	var dec record.Decoder
	out, err := dec.Metadata(rec, nil)
	require.NoError(t, err)
	upDec := newUpstreamDecoder()
	upOut, err := upDec.Metadata(rec, nil)
	require.NoError(t, err)
	require.Equal(t, fromUpMetadata(upOut), out)
	require.Equal(t, []record.RefMetadata{
		{Ref: 5, Type: record.Gauge, Unit: "bytes", Help: "second help"},
		{Ref: 6, Type: record.Counter},
	}, out)
}

func TestOracleMinValidTime(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		mint := g.ts()
		want := upEnc(st).MinValidTime(mint, nil)
		got := record.Encoder{STStorage: st}.MinValidTime(nil, mint)
		requireSameBytes(t, want, got, "min valid time")

		var dec record.Decoder
		out, err := dec.MinValidTime(want)
		require.NoError(t, err)
		require.Equal(t, mint, out)

		upDec := newUpstreamDecoder()
		upOut, err := upDec.MinValidTime(got)
		require.NoError(t, err)
		require.Equal(t, mint, upOut)
	})
}

// upstreamHistogramRecords encodes hs with upstream's encoder the way its
// callers do: the main record, then one for the custom-bucket leftovers, if
// any.
func upstreamHistogramRecords(st bool, hs []record.RefHistogramSample) (rec, customRec []byte) {
	enc := upEnc(st)
	rec, left := enc.HistogramSamples(toUpHistograms(hs), nil)
	if len(left) > 0 {
		customRec = enc.CustomBucketsHistogramSamples(left, nil)
	}
	return rec, customRec
}

func upstreamFloatHistogramRecords(st bool, hs []record.RefFloatHistogramSample) (rec, customRec []byte) {
	enc := upEnc(st)
	rec, left := enc.FloatHistogramSamples(toUpFloatHistograms(hs), nil)
	if len(left) > 0 {
		customRec = enc.CustomBucketsFloatHistogramSamples(left, nil)
	}
	return rec, customRec
}

// decodeAll decodes each non-empty record in recs into one slice, with ours
// and with upstream's decoder; the first error of either is returned.
func decodeHistogramsBoth(t *testing.T, recs ...[]byte) (ours, theirs []record.RefHistogramSample, dec *record.Decoder, ourErr, theirErr error) {
	t.Helper()
	dec = &record.Decoder{}
	upDec := newUpstreamDecoder()
	var upOut []upstream.RefHistogramSample
	for _, r := range recs {
		if len(r) == 0 {
			continue
		}
		var err error
		if ourErr == nil {
			if ours, err = dec.HistogramSamples(r, ours); err != nil {
				ourErr = err
			}
		}
		if theirErr == nil {
			var o []upstream.RefHistogramSample
			if o, err = upDec.HistogramSamples(r, upOut); err != nil {
				theirErr = err
			} else {
				upOut = o
			}
		}
	}
	return ours, fromUpHistograms(upOut), dec, ourErr, theirErr
}

func decodeFloatHistogramsBoth(t *testing.T, recs ...[]byte) (ours, theirs []record.RefFloatHistogramSample, dec *record.Decoder, ourErr, theirErr error) {
	t.Helper()
	dec = &record.Decoder{}
	upDec := newUpstreamDecoder()
	var upOut []upstream.RefFloatHistogramSample
	for _, r := range recs {
		if len(r) == 0 {
			continue
		}
		var err error
		if ourErr == nil {
			if ours, err = dec.FloatHistogramSamples(r, ours); err != nil {
				ourErr = err
			}
		}
		if theirErr == nil {
			var o []upstream.RefFloatHistogramSample
			if o, err = upDec.FloatHistogramSamples(r, upOut); err != nil {
				theirErr = err
			} else {
				upOut = o
			}
		}
	}
	return ours, fromUpFloatHistograms(upOut), dec, ourErr, theirErr
}

func TestOracleHistograms(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.histogramSamples(40, false)
		expect := in
		if !st {
			expect = histogramsWithoutST(splitCustom(in))
		}
		want, wantCustom := upstreamHistogramRecords(st, in)
		got, gotCustom := record.Encoder{STStorage: st}.HistogramSamples(nil, in)
		requireSameBytes(t, want, got, "histograms")
		requireSameBytes(t, wantCustom, gotCustom, "custom-bucket histograms")

		// Ours decodes upstream's records; upstream decodes ours.
		ours, _, dec, err, _ := decodeHistogramsBoth(t, want, wantCustom)
		require.NoError(t, err)
		require.Equal(t, canonHistograms(expect), canonHistograms(ours))
		require.Zero(t, dec.SkippedHistograms())
		_, theirs, _, _, err := decodeHistogramsBoth(t, got, gotCustom)
		require.NoError(t, err)
		require.Equal(t, canonHistograms(expect), canonHistograms(theirs))

		// Decoding again into the warm slice reuses its histograms.
		warm := ours[:0]
		for _, r := range [][]byte{got, gotCustom} {
			if len(r) > 0 {
				warm, err = dec.HistogramSamples(r, warm)
				require.NoError(t, err)
			}
		}
		require.Equal(t, canonHistograms(expect), canonHistograms(warm))
		for i := range warm {
			require.Same(t, ours[i].H, warm[i].H)
		}
	})
}

func TestOracleFloatHistograms(t *testing.T) {
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.floatHistogramSamples(40, false)
		expect := in
		if !st {
			expect = floatHistogramsWithoutST(splitCustomFloat(in))
		}
		want, wantCustom := upstreamFloatHistogramRecords(st, in)
		got, gotCustom := record.Encoder{STStorage: st}.FloatHistogramSamples(nil, in)
		requireSameBytes(t, want, got, "float histograms")
		requireSameBytes(t, wantCustom, gotCustom, "custom-bucket float histograms")

		ours, _, dec, err, _ := decodeFloatHistogramsBoth(t, want, wantCustom)
		require.NoError(t, err)
		require.Equal(t, canonFloatHistograms(expect), canonFloatHistograms(ours))
		_, theirs, _, _, err := decodeFloatHistogramsBoth(t, got, gotCustom)
		require.NoError(t, err)
		require.Equal(t, canonFloatHistograms(expect), canonFloatHistograms(theirs))

		warm := ours[:0]
		for _, r := range [][]byte{got, gotCustom} {
			if len(r) > 0 {
				warm, err = dec.FloatHistogramSamples(r, warm)
				require.NoError(t, err)
			}
		}
		require.Equal(t, canonFloatHistograms(expect), canonFloatHistograms(warm))
		for i := range warm {
			require.Same(t, ours[i].FH, warm[i].FH)
		}
	})
}

// TestOracleHistogramSchemas feeds both decoders histograms with reserved and
// unknown schemas: the results (kept entries, reduced resolutions, errors)
// must agree.
func TestOracleHistogramSchemas(t *testing.T) {
	var reduced, skipped int
	forEachSeed(t, func(t *testing.T, g gen, st bool) {
		in := g.histogramSamples(40, true)
		fin := g.floatHistogramSamples(40, true)
		unknown := 0
		for _, h := range in {
			if !histogram.IsKnownSchema(h.H.Schema) {
				unknown++
			}
			if h.H.Schema > histogram.ExponentialSchemaMax && histogram.IsKnownSchema(h.H.Schema) {
				reduced++
			}
		}
		skipped += unknown

		want, wantCustom := upstreamHistogramRecords(st, in)
		got, gotCustom := record.Encoder{STStorage: st}.HistogramSamples(nil, in)
		requireSameBytes(t, want, got, "histograms")
		requireSameBytes(t, wantCustom, gotCustom, "custom-bucket histograms")
		ours, theirs, dec, ourErr, theirErr := decodeHistogramsBoth(t, got, gotCustom)
		require.Equal(t, theirErr != nil, ourErr != nil, "ours: %v, upstream: %v", ourErr, theirErr)
		if ourErr == nil {
			require.Equal(t, canonHistograms(theirs), canonHistograms(ours))
			require.Equal(t, uint64(unknown), dec.SkippedHistograms())
		}

		fwant, fwantCustom := upstreamFloatHistogramRecords(st, fin)
		fgot, fgotCustom := record.Encoder{STStorage: st}.FloatHistogramSamples(nil, fin)
		requireSameBytes(t, fwant, fgot, "float histograms")
		requireSameBytes(t, fwantCustom, fgotCustom, "custom-bucket float histograms")
		fours, ftheirs, _, ourErr, theirErr := decodeFloatHistogramsBoth(t, fgot, fgotCustom)
		require.Equal(t, theirErr != nil, ourErr != nil, "ours: %v, upstream: %v", ourErr, theirErr)
		if ourErr == nil {
			require.Equal(t, canonFloatHistograms(ftheirs), canonFloatHistograms(fours))
		}
	})
	require.NotZero(t, reduced, "no histogram needed its resolution reduced")
	require.NotZero(t, skipped, "no histogram had an unknown schema")
}

// TestOracleEmpty covers records with no entries, including the V1
// histogram encoders' behaviour when every histogram uses custom buckets.
func TestOracleEmpty(t *testing.T) {
	for _, st := range []bool{false, true} {
		enc, upEnc := record.Encoder{STStorage: st}, upEnc(st)
		requireSameBytes(t, upEnc.Series(nil, nil), enc.Series(nil, nil), "series")
		requireSameBytes(t, upEnc.Samples(nil, nil), enc.Samples(nil, nil), "samples")
		requireSameBytes(t, upEnc.Tombstones(nil, nil), enc.Tombstones(nil, nil), "tombstones")
		requireSameBytes(t, upEnc.Exemplars(nil, nil), enc.Exemplars(nil, nil), "exemplars")
		requireSameBytes(t, upEnc.MmapMarkers(nil, nil), enc.MmapMarkers(nil, nil), "mmap markers")
		requireSameBytes(t, upEnc.Metadata(nil, nil), enc.Metadata(nil, nil), "metadata")
		require.Len(t, enc.Samples(nil, nil), 1)

		want, wantCustom := upstreamHistogramRecords(st, nil)
		got, gotCustom := enc.HistogramSamples(nil, nil)
		requireSameBytes(t, want, got, "histograms")
		require.Empty(t, wantCustom)
		require.Empty(t, gotCustom)
		fwant, fwantCustom := upstreamFloatHistogramRecords(st, nil)
		fgot, fgotCustom := enc.FloatHistogramSamples(nil, nil)
		requireSameBytes(t, fwant, fgot, "float histograms")
		require.Empty(t, fwantCustom)
		require.Empty(t, fgotCustom)
		require.Len(t, got, 1, "an empty batch is a record with just its type byte")

		// All custom buckets: V1 upstream returns an empty main buffer (the
		// caller must not write it) and a custom-buckets record; so do we.
		g := newGen(1)
		hs := []record.RefHistogramSample{
			{Ref: 1, T: 10, H: &histogram.Histogram{Schema: histogram.CustomBucketsSchema, CustomValues: []float64{1, 2}}},
			{Ref: 2, T: 20, H: &histogram.Histogram{Schema: histogram.CustomBucketsSchema, Count: 3}},
		}
		want, wantCustom = upstreamHistogramRecords(st, hs)
		got, gotCustom = enc.HistogramSamples(nil, hs)
		requireSameBytes(t, want, got, "all-custom histograms")
		requireSameBytes(t, wantCustom, gotCustom, "all-custom histograms, custom record")
		if !st {
			require.Empty(t, got)
			require.Equal(t, byte(record.CustomBucketsHistogramSamples), gotCustom[0])
		} else {
			require.Equal(t, byte(record.HistogramSamplesV2), got[0])
			require.Empty(t, gotCustom)
		}
		fhs := []record.RefFloatHistogramSample{{Ref: 1, T: 10, FH: g.floatHistogram(false)}}
		fhs[0].FH.Schema = histogram.CustomBucketsSchema
		fwant, fwantCustom = upstreamFloatHistogramRecords(st, fhs)
		fgot, fgotCustom = enc.FloatHistogramSamples(nil, fhs)
		requireSameBytes(t, fwant, fgot, "all-custom float histograms")
		requireSameBytes(t, fwantCustom, fgotCustom, "all-custom float histograms, custom record")

		// Both records follow what dst held.
		prefix := []byte("prefix")
		got, gotCustom = enc.HistogramSamples(prefix, hs)
		requireSameBytes(t, want, got, "all-custom histograms after prefix")
		requireSameBytes(t, wantCustom, gotCustom, "all-custom custom record after prefix")
	}

	// Records with no entries decode to nothing, in both decoders.
	var dec record.Decoder
	for _, typ := range []record.Type{record.Samples, record.SamplesV2} {
		out, err := dec.Samples([]byte{byte(typ)}, nil)
		require.NoError(t, err)
		require.Empty(t, out)
	}
	for _, typ := range []record.Type{record.HistogramSamples, record.CustomBucketsHistogramSamples, record.HistogramSamplesV2} {
		out, err := dec.HistogramSamples([]byte{byte(typ)}, nil)
		require.NoError(t, err)
		require.Empty(t, out)
	}
}

// TestUpstreamSamplesV2Quirk documents why our SamplesV2 decoder does not
// follow upstream's: upstream recognises the first sample by an empty output
// slice, so appending to a non-empty one misreads the record.
func TestUpstreamSamplesV2Quirk(t *testing.T) {
	in := []record.RefSample{{Ref: 10, ST: 0, T: 1000, V: 1}, {Ref: 11, ST: 0, T: 1015, V: 2}}
	rec := record.Encoder{STStorage: true}.Samples(nil, in)
	prefix := []record.RefSample{{Ref: 1, T: 1, V: 1}}

	upDec := newUpstreamDecoder()
	upOut, upErr := upDec.Samples(rec, toUpSamples(prefix))
	upstreamCorrect := upErr == nil && len(upOut) == 3 &&
		canonSamples(fromUpSamples(upOut[1:]))[0] == canonSamples(in)[0]
	require.False(t, upstreamCorrect, "upstream now decodes SamplesV2 after existing elements; revisit the doc comment on Decoder.Samples")

	var dec record.Decoder
	out, err := dec.Samples(rec, prefix)
	require.NoError(t, err)
	require.Equal(t, canonSamples(append(prefix, in...)), canonSamples(out))
}

// TestUpstreamDifferences pins the other places where we knowingly differ
// from upstream's decoder, so that a change on either side is noticed.
func TestUpstreamDifferences(t *testing.T) {
	var dec record.Decoder
	upDec := newUpstreamDecoder()

	// A V2 histogram record cut right after the first entry's ref, T and
	// ST: upstream reports no entries and no error, we report truncation.
	for _, rec := range [][]byte{{12, 2, 2, 2}, {13, 2, 2, 2}} {
		var upErr error
		if rec[0] == 12 {
			_, upErr = upDec.HistogramSamples(rec, nil)
			_, err := dec.HistogramSamples(rec, nil)
			require.ErrorIs(t, err, record.ErrShortRecord)
		} else {
			_, upErr = upDec.FloatHistogramSamples(rec, nil)
			_, err := dec.FloatHistogramSamples(rec, nil)
			require.ErrorIs(t, err, record.ErrShortRecord)
		}
		require.NoError(t, upErr)
	}

	// Upstream replaces the output slice, dropping what it held, when its
	// capacity is below its estimate of the record's samples; we append.
	in := []record.RefSample{{Ref: 1, T: 1, V: 1}, {Ref: 2, T: 2, V: 2}}
	rec := record.Encoder{}.Samples(nil, in)
	prefix := []record.RefSample{{Ref: 99}}
	upOut, err := upDec.Samples(rec, toUpSamples(prefix))
	require.NoError(t, err)
	require.Len(t, upOut, 2, "upstream kept the existing element")
	out, err := dec.Samples(rec, prefix)
	require.NoError(t, err)
	require.Equal(t, append(prefix, in...), out)
}
