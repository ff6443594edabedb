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
	return encodeHistograms(e, dst, hs, &intHistograms)
}

// histogramEntry is what the shared record framing needs of one entry.
type histogramEntry struct {
	ref    Ref
	t, st  int64
	custom bool // uses custom buckets (schema -53)
}

// histogramKind is how the shared framing reads one kind of histogram entry
// and writes its histogram. Plain functions, not closures: nothing allocates.
type histogramKind[E any] struct {
	v1, customV1, v2 Type
	entry            func(*E) histogramEntry
	body             func([]byte, *E) []byte
}

var (
	intHistograms = histogramKind[RefHistogramSample]{
		HistogramSamples, CustomBucketsHistogramSamples, HistogramSamplesV2,
		func(s *RefHistogramSample) histogramEntry {
			return histogramEntry{s.Ref, s.T, s.ST, s.H.UsesCustomBuckets()}
		},
		func(dst []byte, s *RefHistogramSample) []byte { return appendHistogram(dst, s.H) },
	}
	floatHistograms = histogramKind[RefFloatHistogramSample]{
		FloatHistogramSamples, CustomBucketsFloatHistogramSamples, FloatHistogramSamplesV2,
		func(s *RefFloatHistogramSample) histogramEntry {
			return histogramEntry{s.Ref, s.T, s.ST, s.FH.UsesCustomBuckets()}
		},
		func(dst []byte, s *RefFloatHistogramSample) []byte { return appendFloatHistogram(dst, s.FH) },
	}
)

// encodeHistograms frames integer or float histogram entries into records:
// one V2 record with STStorage; otherwise a V1 record for the exponential
// histograms and a custom-bucket V1 record for the others.
func encodeHistograms[E any](e Encoder, dst []byte, hs []E, k *histogramKind[E]) (rec, customRec []byte) {
	start := len(dst)
	out := dst
	if e.STStorage {
		out = appendHistogramsV2(out, hs, k)
		return out[start:], out[len(out):]
	}
	if len(hs) == 0 {
		out = append(out, byte(k.v1))
		return out[start:], out[len(out):]
	}
	firstCustom, nCustom := -1, 0
	for i := range hs {
		if k.entry(&hs[i]).custom {
			if firstCustom < 0 {
				firstCustom = i
			}
			nCustom++
		}
	}
	if nCustom < len(hs) {
		out = appendHistogramsV1(out, k.v1, 0, hs, false, k)
	}
	mid := len(out)
	if nCustom > 0 {
		out = appendHistogramsV1(out, k.customV1, firstCustom, hs, true, k)
	}
	return out[start:mid], out[mid:]
}

// appendHistogramsV1 writes a V1 histogram record of type t: base ref and
// time from hs[base], then those entries of hs whose custom-bucket-ness is
// custom, each as varint deltas to the base and the histogram.
func appendHistogramsV1[E any](dst []byte, t Type, base int, hs []E, custom bool, k *histogramKind[E]) []byte {
	b := k.entry(&hs[base])
	dst = append(dst, byte(t))
	dst = appendBE64(dst, uint64(b.ref))
	dst = appendBE64(dst, uint64(b.t))
	for i := range hs {
		h := k.entry(&hs[i])
		if h.custom != custom {
			continue
		}
		dst = binary.AppendVarint(dst, int64(h.ref)-int64(b.ref))
		dst = binary.AppendVarint(dst, h.t-b.t)
		dst = k.body(dst, &hs[i])
	}
	return dst
}

// appendHistogramsV2 writes a V2 histogram record: the first entry with
// absolute ref, T and ST, later ones with deltas and an ST marker as in
// SamplesV2, each followed by its histogram.
func appendHistogramsV2[E any](dst []byte, hs []E, k *histogramKind[E]) []byte {
	dst = append(dst, byte(k.v2))
	var first, prev histogramEntry
	for i := range hs {
		h := k.entry(&hs[i])
		if i == 0 {
			first = h
			dst = binary.AppendVarint(dst, int64(h.ref))
			dst = binary.AppendVarint(dst, h.t)
			dst = binary.AppendVarint(dst, h.st)
		} else {
			dst = binary.AppendVarint(dst, int64(h.ref)-int64(prev.ref))
			dst = binary.AppendVarint(dst, h.t-first.t)
			dst = appendST(dst, h.st, first.st, prev.st)
		}
		dst = k.body(dst, &hs[i])
		prev = h
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
	return encodeHistograms(e, dst, fhs, &floatHistograms)
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
