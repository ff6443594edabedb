package record_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// seedRecords returns valid records of every type, from the fixed records of
// the decode tests and from random contents.
func seedRecords() [][]byte {
	var out [][]byte
	for _, v := range validRecords() {
		out = append(out, v.rec)
	}
	g := newGen(4242)
	for _, st := range []bool{false, true} {
		enc := record.Encoder{STStorage: st}
		out = append(out,
			enc.Series(nil, g.series(3)),
			enc.Samples(nil, g.samples(5)),
			enc.Exemplars(nil, g.exemplars(3)),
			enc.Metadata(nil, g.metadata(3)),
			enc.Tombstones(nil, g.stones(3)),
			enc.MmapMarkers(nil, g.markers(3)),
			enc.MinValidTime(nil, g.ts()),
		)
		rec, crec := enc.HistogramSamples(nil, g.histogramSamples(4, true))
		out = append(out, rec, crec)
		rec, crec = enc.FloatHistogramSamples(nil, g.floatHistogramSamples(4, true))
		out = append(out, rec, crec)
	}
	return out
}

// FuzzDecode feeds arbitrary bytes to every decode method. None may panic;
// at most the method for the record's type may succeed, and what it decodes
// must survive being encoded and decoded again.
func FuzzDecode(f *testing.F) {
	for _, rec := range seedRecords() {
		f.Add(rec)
	}
	f.Add([]byte{})
	f.Add([]byte{200})
	f.Add([]byte{12, 2, 2, 2})
	f.Add([]byte{6, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0})

	f.Fuzz(func(t *testing.T, rec []byte) {
		var d record.Decoder
		typ := d.TypeOf(rec)

		series, errSeries := d.Series(rec, nil)
		samples, errSamples := d.Samples(rec, nil)
		stones, errStones := d.Tombstones(rec, nil)
		exemplars, errExemplars := d.Exemplars(rec, nil)
		markers, errMarkers := d.MmapMarkers(rec, nil)
		meta, errMeta := d.Metadata(rec, nil)
		hs, errHs := d.HistogramSamples(rec, nil)
		fhs, errFhs := d.FloatHistogramSamples(rec, nil)
		mint, errMint := d.MinValidTime(rec)

		errs := []error{errSeries, errSamples, errStones, errExemplars, errMarkers, errMeta, errHs, errFhs, errMint}
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			}
			if typ == record.Unknown {
				require.Error(t, err)
				if len(rec) > 0 {
					require.True(t, record.IsUnknownType(err), "%v", err)
				}
			}
		}
		require.LessOrEqual(t, ok, 1, "several decoders accepted one record")

		// Upstream as the oracle. Where upstream's decoder is safe on any
		// input, both must agree on success and results; elsewhere upstream
		// may panic or run out of memory on hostile counts, so it is asked
		// only about records ours accepted, which bound every count.
		up := newUpstreamDecoder()
		switch typ {
		case record.Samples, record.SamplesV2:
			upOut, err := up.Samples(rec, nil)
			require.Equal(t, err == nil, errSamples == nil, "upstream: %v, ours: %v", err, errSamples)
			require.Equal(t, canonSamples(fromUpSamples(upOut)), canonSamples(samples))
		case record.Tombstones:
			upOut, err := up.Tombstones(rec, nil)
			require.Equal(t, err == nil, errStones == nil, "upstream: %v, ours: %v", err, errStones)
			require.Equal(t, fromUpStones(upOut), nonEmpty(stones))
		case record.MmapMarkers:
			upOut, err := up.MmapMarkers(rec, nil)
			require.Equal(t, err == nil, errMarkers == nil, "upstream: %v, ours: %v", err, errMarkers)
			require.Equal(t, nonEmpty(fromUpMarkers(upOut)), nonEmpty(markers))
		case record.MinValidTime:
			upOut, err := up.MinValidTime(rec)
			require.Equal(t, err == nil, errMint == nil, "upstream: %v, ours: %v", err, errMint)
			require.Equal(t, upOut, mint)
		}
		switch {
		case errSeries == nil:
			upOut, err := up.Series(rec, nil)
			require.NoError(t, err)
			require.Equal(t, canonSeries(fromUpSeries(upOut)), canonSeries(series))
		case errExemplars == nil:
			upOut, err := up.Exemplars(rec, nil)
			require.NoError(t, err)
			require.Equal(t, canonExemplars(fromUpExemplars(upOut)), canonExemplars(exemplars))
		case errMeta == nil:
			upOut, err := up.Metadata(rec, nil)
			require.NoError(t, err)
			require.Equal(t, nonEmpty(fromUpMetadata(upOut)), nonEmpty(meta))
		case errHs == nil:
			upOut, err := up.HistogramSamples(rec, nil)
			require.NoError(t, err)
			require.Equal(t, canonHistograms(fromUpHistograms(upOut)), canonHistograms(hs))
		case errFhs == nil:
			upOut, err := up.FloatHistogramSamples(rec, nil)
			require.NoError(t, err)
			require.Equal(t, canonFloatHistograms(fromUpFloatHistograms(upOut)), canonFloatHistograms(fhs))
		}

		var dd record.Decoder
		for _, st := range []bool{false, true} {
			enc := record.Encoder{STStorage: st}
			switch {
			case errSeries == nil:
				again, err := dd.Series(enc.Series(nil, series), nil)
				require.NoError(t, err)
				require.Equal(t, canonSeries(series), canonSeries(again))
			case errSamples == nil:
				want := samples
				if !st {
					want = withoutST(samples)
				}
				again, err := dd.Samples(enc.Samples(nil, samples), nil)
				require.NoError(t, err)
				require.Equal(t, canonSamples(want), canonSamples(again))
			case errStones == nil:
				again, err := dd.Tombstones(enc.Tombstones(nil, stones), nil)
				require.NoError(t, err)
				require.Equal(t, stones, again)
			case errExemplars == nil:
				again, err := dd.Exemplars(enc.Exemplars(nil, exemplars), nil)
				require.NoError(t, err)
				require.Equal(t, canonExemplars(exemplars), canonExemplars(again))
			case errMarkers == nil:
				again, err := dd.MmapMarkers(enc.MmapMarkers(nil, markers), nil)
				require.NoError(t, err)
				require.Equal(t, markers, again)
			case errMeta == nil:
				again, err := dd.Metadata(enc.Metadata(nil, meta), nil)
				require.NoError(t, err)
				require.Equal(t, meta, again)
			case errHs == nil:
				want := hs
				if !st {
					want = histogramsWithoutST(splitCustom(hs))
				}
				rec1, rec2 := enc.HistogramSamples(nil, hs)
				again, err := decodeNonEmpty(dd.HistogramSamples, rec1, rec2)
				require.NoError(t, err)
				require.Equal(t, canonHistograms(want), canonHistograms(again))
			case errFhs == nil:
				want := fhs
				if !st {
					want = floatHistogramsWithoutST(splitCustomFloat(fhs))
				}
				rec1, rec2 := enc.FloatHistogramSamples(nil, fhs)
				again, err := decodeNonEmpty(dd.FloatHistogramSamples, rec1, rec2)
				require.NoError(t, err)
				require.Equal(t, canonFloatHistograms(want), canonFloatHistograms(again))
			case errMint == nil:
				again, err := dd.MinValidTime(enc.MinValidTime(nil, mint))
				require.NoError(t, err)
				require.Equal(t, mint, again)
			}
		}
		require.Zero(t, dd.SkippedHistograms(), "re-encoded histograms must all have known schemas")
	})
}

// decodeNonEmpty decodes each non-empty record into one slice, as a caller
// of the histogram encoders writes them.
func decodeNonEmpty[T any](decode func([]byte, []T) ([]T, error), recs ...[]byte) ([]T, error) {
	var out []T
	for _, r := range recs {
		if len(r) == 0 {
			continue
		}
		var err error
		if out, err = decode(r, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}
