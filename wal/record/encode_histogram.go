package record

import (
	"encoding/binary"

	"github.com/prometheus/prometheus/model/histogram"
)

// HistogramSamples appends the records holding the integer histogram samples
// hs to dst. rec and customRec are consecutive sub-slices of the buffer dst
// was extended into, starting right after dst's contents. A record to write
// is never empty, so the caller writes each of rec and customRec that has a
// non-zero length, in that order. Every H must be non-nil.
//
// With STStorage set, rec is a single HistogramSamplesV2 record holding all
// of hs and customRec is empty.
//
// Without it, rec is a HistogramSamples record holding the exponential
// histograms of hs and customRec a CustomBucketsHistogramSamples record
// holding the custom-bucket ones (schema -53), as upstream splits them. The
// HistogramSamples record uses hs[0] as its base ref and time even when hs[0]
// went to the other record, exactly as upstream does. Upstream returns an
// empty buffer instead of a HistogramSamples record when every histogram uses
// custom buckets, and no leftovers when none do; here that is an empty rec or
// an empty customRec. An empty hs gives a HistogramSamples record with no
// entries (just the type byte), as upstream.
//
// To reuse the buffer for the next call, keep rec[:0].
func (e Encoder) HistogramSamples(dst []byte, hs []RefHistogramSample) (rec, customRec []byte) {
	start := len(dst)
	out := dst
	if e.STStorage {
		out = appendHistogramsV2(out, hs)
		return out[start:], out[len(out):]
	}
	if len(hs) == 0 {
		out = append(out, byte(HistogramSamples))
		return out[start:], out[len(out):]
	}
	firstCustom := -1
	nCustom := 0
	for i := range hs {
		if hs[i].H.UsesCustomBuckets() {
			if firstCustom < 0 {
				firstCustom = i
			}
			nCustom++
		}
	}
	if nCustom < len(hs) {
		out = appendHistogramsV1(out, HistogramSamples, &hs[0], hs, false)
	}
	mid := len(out)
	if nCustom > 0 {
		out = appendHistogramsV1(out, CustomBucketsHistogramSamples, &hs[firstCustom], hs, true)
	}
	return out[start:mid], out[mid:]
}

// appendHistogramsV1 writes a V1 histogram record of type t: base ref and
// time from base, then those histograms of hs whose custom-bucket-ness is
// custom, each as varint deltas to the base and the histogram.
func appendHistogramsV1(dst []byte, t Type, base *RefHistogramSample, hs []RefHistogramSample, custom bool) []byte {
	dst = append(dst, byte(t))
	baseRef, baseT := int64(base.Ref), base.T
	dst = appendBE64(dst, uint64(baseRef))
	dst = appendBE64(dst, uint64(baseT))
	for i := range hs {
		s := &hs[i]
		if s.H.UsesCustomBuckets() != custom {
			continue
		}
		dst = binary.AppendVarint(dst, int64(s.Ref)-baseRef)
		dst = binary.AppendVarint(dst, s.T-baseT)
		dst = appendHistogram(dst, s.H)
	}
	return dst
}

// appendHistogramsV2 writes a HistogramSamplesV2 record: the first entry with
// absolute ref, T and ST, later ones with deltas and an ST marker as in
// SamplesV2, each followed by its histogram.
func appendHistogramsV2(dst []byte, hs []RefHistogramSample) []byte {
	dst = append(dst, byte(HistogramSamplesV2))
	if len(hs) == 0 {
		return dst
	}
	first := &hs[0]
	dst = binary.AppendVarint(dst, int64(first.Ref))
	dst = binary.AppendVarint(dst, first.T)
	dst = binary.AppendVarint(dst, first.ST)
	dst = appendHistogram(dst, first.H)
	for i := 1; i < len(hs); i++ {
		s, prev := &hs[i], &hs[i-1]
		dst = binary.AppendVarint(dst, int64(s.Ref)-int64(prev.Ref))
		dst = binary.AppendVarint(dst, s.T-first.T)
		dst = appendST(dst, s.ST, first.ST, prev.ST)
		dst = appendHistogram(dst, s.H)
	}
	return dst
}

// appendSpans writes a span count and each span's offset and length.
func appendSpans(dst []byte, spans []histogram.Span) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(spans)))
	for _, s := range spans {
		dst = binary.AppendVarint(dst, int64(s.Offset))
		dst = binary.AppendUvarint(dst, uint64(s.Length))
	}
	return dst
}

// appendFloats writes a count and each value as a big-endian float64.
func appendFloats(dst []byte, fs []float64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(fs)))
	for _, f := range fs {
		dst = appendFloat(dst, f)
	}
	return dst
}

// appendHistogram writes one integer histogram. The custom bounds are
// written only for the custom-buckets schema.
func appendHistogram(dst []byte, h *histogram.Histogram) []byte {
	dst = append(dst, byte(h.CounterResetHint))
	dst = binary.AppendVarint(dst, int64(h.Schema))
	dst = appendFloat(dst, h.ZeroThreshold)
	dst = binary.AppendUvarint(dst, h.ZeroCount)
	dst = binary.AppendUvarint(dst, h.Count)
	dst = appendFloat(dst, h.Sum)
	dst = appendSpans(dst, h.PositiveSpans)
	dst = appendSpans(dst, h.NegativeSpans)
	dst = binary.AppendUvarint(dst, uint64(len(h.PositiveBuckets)))
	for _, b := range h.PositiveBuckets {
		dst = binary.AppendVarint(dst, b)
	}
	dst = binary.AppendUvarint(dst, uint64(len(h.NegativeBuckets)))
	for _, b := range h.NegativeBuckets {
		dst = binary.AppendVarint(dst, b)
	}
	if histogram.IsCustomBucketsSchema(h.Schema) {
		dst = appendFloats(dst, h.CustomValues)
	}
	return dst
}

// FloatHistogramSamples appends the records holding the float histogram
// samples fhs to dst. It splits and frames them exactly as HistogramSamples
// does, with FloatHistogramSamples, CustomBucketsFloatHistogramSamples and
// FloatHistogramSamplesV2 records. Every FH must be non-nil.
func (e Encoder) FloatHistogramSamples(dst []byte, fhs []RefFloatHistogramSample) (rec, customRec []byte) {
	start := len(dst)
	out := dst
	if e.STStorage {
		out = appendFloatHistogramsV2(out, fhs)
		return out[start:], out[len(out):]
	}
	if len(fhs) == 0 {
		out = append(out, byte(FloatHistogramSamples))
		return out[start:], out[len(out):]
	}
	firstCustom := -1
	nCustom := 0
	for i := range fhs {
		if fhs[i].FH.UsesCustomBuckets() {
			if firstCustom < 0 {
				firstCustom = i
			}
			nCustom++
		}
	}
	if nCustom < len(fhs) {
		out = appendFloatHistogramsV1(out, FloatHistogramSamples, &fhs[0], fhs, false)
	}
	mid := len(out)
	if nCustom > 0 {
		out = appendFloatHistogramsV1(out, CustomBucketsFloatHistogramSamples, &fhs[firstCustom], fhs, true)
	}
	return out[start:mid], out[mid:]
}

// appendFloatHistogramsV1 is appendHistogramsV1 for float histograms.
func appendFloatHistogramsV1(dst []byte, t Type, base *RefFloatHistogramSample, fhs []RefFloatHistogramSample, custom bool) []byte {
	dst = append(dst, byte(t))
	baseRef, baseT := int64(base.Ref), base.T
	dst = appendBE64(dst, uint64(baseRef))
	dst = appendBE64(dst, uint64(baseT))
	for i := range fhs {
		s := &fhs[i]
		if s.FH.UsesCustomBuckets() != custom {
			continue
		}
		dst = binary.AppendVarint(dst, int64(s.Ref)-baseRef)
		dst = binary.AppendVarint(dst, s.T-baseT)
		dst = appendFloatHistogram(dst, s.FH)
	}
	return dst
}

// appendFloatHistogramsV2 is appendHistogramsV2 for float histograms.
func appendFloatHistogramsV2(dst []byte, fhs []RefFloatHistogramSample) []byte {
	dst = append(dst, byte(FloatHistogramSamplesV2))
	if len(fhs) == 0 {
		return dst
	}
	first := &fhs[0]
	dst = binary.AppendVarint(dst, int64(first.Ref))
	dst = binary.AppendVarint(dst, first.T)
	dst = binary.AppendVarint(dst, first.ST)
	dst = appendFloatHistogram(dst, first.FH)
	for i := 1; i < len(fhs); i++ {
		s, prev := &fhs[i], &fhs[i-1]
		dst = binary.AppendVarint(dst, int64(s.Ref)-int64(prev.Ref))
		dst = binary.AppendVarint(dst, s.T-first.T)
		dst = appendST(dst, s.ST, first.ST, prev.ST)
		dst = appendFloatHistogram(dst, s.FH)
	}
	return dst
}

// appendFloatHistogram writes one float histogram: like appendHistogram, but
// the zero count, count and buckets are big-endian float64s, the buckets
// absolute rather than deltas.
func appendFloatHistogram(dst []byte, h *histogram.FloatHistogram) []byte {
	dst = append(dst, byte(h.CounterResetHint))
	dst = binary.AppendVarint(dst, int64(h.Schema))
	dst = appendFloat(dst, h.ZeroThreshold)
	dst = appendFloat(dst, h.ZeroCount)
	dst = appendFloat(dst, h.Count)
	dst = appendFloat(dst, h.Sum)
	dst = appendSpans(dst, h.PositiveSpans)
	dst = appendSpans(dst, h.NegativeSpans)
	dst = appendFloats(dst, h.PositiveBuckets)
	dst = appendFloats(dst, h.NegativeBuckets)
	if histogram.IsCustomBucketsSchema(h.Schema) {
		dst = appendFloats(dst, h.CustomValues)
	}
	return dst
}
