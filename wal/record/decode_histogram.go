package record

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
)

// HistogramSamples appends the samples of a HistogramSamples,
// CustomBucketsHistogramSamples or HistogramSamplesV2 record to dst.
//
// Histograms are decoded into the *histogram.Histogram values found in
// dst[len(dst):cap(dst)], reusing them and their span, bucket and custom-bound
// slices, so that decoding into a buffer that was truncated with dst[:0]
// allocates nothing once it has grown to fit. The decoder therefore owns
// every histogram reachable from dst beyond its length: a caller that keeps
// histograms from an earlier call must hand in a fresh slice or clear the
// old elements first (for example with clear(dst[:cap(dst)])). Empty span
// and bucket fields come back nil in fresh histograms and as zero-length
// slices in reused ones.
//
// Like upstream, a histogram with an unknown schema is dropped (and counted,
// see SkippedHistograms), and one with a schema from 9 to 52, which a newer
// Prometheus may write, is reduced to schema 8; if that reduction fails the
// record fails to decode.
func (d *Decoder) HistogramSamples(rec []byte, dst []RefHistogramSample) ([]RefHistogramSample, error) {
	t, err := checkType(rec, HistogramSamples, CustomBucketsHistogramSamples, HistogramSamplesV2)
	if err != nil {
		return dst, err
	}
	n0 := len(dst)
	b := newDecbuf(rec)
	if t == HistogramSamplesV2 {
		dst, err = d.histogramsV2(&b, dst)
	} else {
		dst, err = d.histogramsV1(&b, dst)
	}
	if err == nil {
		err = b.done(t)
	}
	if err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// nextHistogramSlot extends dst by one element, keeping the histogram pointer
// already stored in that element (if any) and allocating one otherwise.
func nextHistogramSlot(dst []RefHistogramSample) ([]RefHistogramSample, *RefHistogramSample) {
	if len(dst) < cap(dst) {
		dst = dst[:len(dst)+1]
	} else {
		dst = append(dst, RefHistogramSample{})
	}
	s := &dst[len(dst)-1]
	if s.H == nil {
		s.H = new(histogram.Histogram)
	}
	return dst, s
}

// keepHistogram applies upstream's schema rules to a decoded histogram. It
// reports whether to keep the entry, or an error if the resolution of a
// histogram with a reserved schema could not be reduced.
func (d *Decoder) keepHistogram(h *histogram.Histogram, n int) (bool, error) {
	if !histogram.IsKnownSchema(h.Schema) {
		d.skipped++
		return false, nil
	}
	if h.Schema > histogram.ExponentialSchemaMax {
		if err := h.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return false, fmt.Errorf("record: reducing resolution of histogram #%d: %w", n+1, err)
		}
	}
	return true, nil
}

// histogramsV1 decodes the body of a HistogramSamples or
// CustomBucketsHistogramSamples record.
func (d *Decoder) histogramsV1(b *decbuf, dst []RefHistogramSample) ([]RefHistogramSample, error) {
	if len(b.b) == 0 {
		return dst, nil
	}
	baseRef := b.be64()
	baseT := int64(b.be64())
	for len(b.b) > 0 {
		dref := b.varint()
		dt := b.varint()
		var s *RefHistogramSample
		dst, s = nextHistogramSlot(dst)
		s.Ref, s.ST, s.T = Ref(baseRef+uint64(dref)), 0, baseT+dt
		decodeHistogram(b, s.H)
		if b.err != nil {
			return dst[:len(dst)-1], nil
		}
		if keep, err := d.keepHistogram(s.H, len(dst)-1); err != nil || !keep {
			dst = dst[:len(dst)-1]
			if err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// histogramsV2 decodes the body of a HistogramSamplesV2 record. Deltas chain
// through dropped entries, as they were written.
func (d *Decoder) histogramsV2(b *decbuf, dst []RefHistogramSample) ([]RefHistogramSample, error) {
	if len(b.b) == 0 {
		return dst, nil
	}
	firstRef, firstT, firstST := b.varint(), b.varint(), b.varint()
	ref, t, st := firstRef, firstT, firstST
	for i := 0; i == 0 || len(b.b) > 0; i++ {
		if i > 0 {
			ref += b.varint()
			t = firstT + b.varint()
			st = readST(b, firstST, st)
		}
		var s *RefHistogramSample
		dst, s = nextHistogramSlot(dst)
		s.Ref, s.ST, s.T = Ref(ref), st, t
		decodeHistogram(b, s.H)
		if b.err != nil {
			return dst[:len(dst)-1], nil
		}
		if keep, err := d.keepHistogram(s.H, len(dst)-1); err != nil || !keep {
			dst = dst[:len(dst)-1]
			if err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// resize returns s with length n, reusing its array when it is big enough.
// A nil s stays nil for n == 0.
func resize[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	return make([]T, n)
}

// decodeSpans reads a span count and the spans into s's storage. Offsets and
// lengths are truncated to 32 bits as upstream does.
func decodeSpans(b *decbuf, s []histogram.Span) []histogram.Span {
	s = resize(s, b.count(2))
	for i := range s {
		s[i].Offset = int32(b.varint())
		s[i].Length = uint32(b.uvarint())
	}
	return s
}

// decodeFloats reads a count and that many big-endian float64s into s's
// storage.
func decodeFloats(b *decbuf, s []float64) []float64 {
	s = resize(s, b.count(8))
	for i := range s {
		s[i] = b.float()
	}
	return s
}

// decodeDeltas reads a count and that many varint bucket deltas into s's
// storage.
func decodeDeltas(b *decbuf, s []int64) []int64 {
	s = resize(s, b.count(1))
	for i := range s {
		s[i] = b.varint()
	}
	return s
}

// decodeHistogram reads one integer histogram into h, overwriting every
// field. The schema is truncated to 32 bits as upstream does; custom bounds
// are read only for the custom-buckets schema.
func decodeHistogram(b *decbuf, h *histogram.Histogram) {
	h.CounterResetHint = histogram.CounterResetHint(b.byte())
	h.Schema = int32(b.varint())
	h.ZeroThreshold = b.float()
	h.ZeroCount = b.uvarint()
	h.Count = b.uvarint()
	h.Sum = b.float()
	h.PositiveSpans = decodeSpans(b, h.PositiveSpans)
	h.NegativeSpans = decodeSpans(b, h.NegativeSpans)
	h.PositiveBuckets = decodeDeltas(b, h.PositiveBuckets)
	h.NegativeBuckets = decodeDeltas(b, h.NegativeBuckets)
	if histogram.IsCustomBucketsSchema(h.Schema) {
		h.CustomValues = decodeFloats(b, h.CustomValues)
	} else {
		h.CustomValues = h.CustomValues[:0]
	}
}

// FloatHistogramSamples appends the samples of a FloatHistogramSamples,
// CustomBucketsFloatHistogramSamples or FloatHistogramSamplesV2 record to
// dst. It reuses histograms and handles schemas exactly as HistogramSamples
// does.
func (d *Decoder) FloatHistogramSamples(rec []byte, dst []RefFloatHistogramSample) ([]RefFloatHistogramSample, error) {
	t, err := checkType(rec, FloatHistogramSamples, CustomBucketsFloatHistogramSamples, FloatHistogramSamplesV2)
	if err != nil {
		return dst, err
	}
	n0 := len(dst)
	b := newDecbuf(rec)
	if t == FloatHistogramSamplesV2 {
		dst, err = d.floatHistogramsV2(&b, dst)
	} else {
		dst, err = d.floatHistogramsV1(&b, dst)
	}
	if err == nil {
		err = b.done(t)
	}
	if err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// nextFloatHistogramSlot is nextHistogramSlot for float histograms.
func nextFloatHistogramSlot(dst []RefFloatHistogramSample) ([]RefFloatHistogramSample, *RefFloatHistogramSample) {
	if len(dst) < cap(dst) {
		dst = dst[:len(dst)+1]
	} else {
		dst = append(dst, RefFloatHistogramSample{})
	}
	s := &dst[len(dst)-1]
	if s.FH == nil {
		s.FH = new(histogram.FloatHistogram)
	}
	return dst, s
}

// keepFloatHistogram is keepHistogram for float histograms.
func (d *Decoder) keepFloatHistogram(h *histogram.FloatHistogram, n int) (bool, error) {
	if !histogram.IsKnownSchema(h.Schema) {
		d.skipped++
		return false, nil
	}
	if h.Schema > histogram.ExponentialSchemaMax {
		if err := h.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return false, fmt.Errorf("record: reducing resolution of histogram #%d: %w", n+1, err)
		}
	}
	return true, nil
}

// floatHistogramsV1 decodes the body of a FloatHistogramSamples or
// CustomBucketsFloatHistogramSamples record.
func (d *Decoder) floatHistogramsV1(b *decbuf, dst []RefFloatHistogramSample) ([]RefFloatHistogramSample, error) {
	if len(b.b) == 0 {
		return dst, nil
	}
	baseRef := b.be64()
	baseT := int64(b.be64())
	for len(b.b) > 0 {
		dref := b.varint()
		dt := b.varint()
		var s *RefFloatHistogramSample
		dst, s = nextFloatHistogramSlot(dst)
		s.Ref, s.ST, s.T = Ref(baseRef+uint64(dref)), 0, baseT+dt
		decodeFloatHistogram(b, s.FH)
		if b.err != nil {
			return dst[:len(dst)-1], nil
		}
		if keep, err := d.keepFloatHistogram(s.FH, len(dst)-1); err != nil || !keep {
			dst = dst[:len(dst)-1]
			if err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// floatHistogramsV2 decodes the body of a FloatHistogramSamplesV2 record.
func (d *Decoder) floatHistogramsV2(b *decbuf, dst []RefFloatHistogramSample) ([]RefFloatHistogramSample, error) {
	if len(b.b) == 0 {
		return dst, nil
	}
	firstRef, firstT, firstST := b.varint(), b.varint(), b.varint()
	ref, t, st := firstRef, firstT, firstST
	for i := 0; i == 0 || len(b.b) > 0; i++ {
		if i > 0 {
			ref += b.varint()
			t = firstT + b.varint()
			st = readST(b, firstST, st)
		}
		var s *RefFloatHistogramSample
		dst, s = nextFloatHistogramSlot(dst)
		s.Ref, s.ST, s.T = Ref(ref), st, t
		decodeFloatHistogram(b, s.FH)
		if b.err != nil {
			return dst[:len(dst)-1], nil
		}
		if keep, err := d.keepFloatHistogram(s.FH, len(dst)-1); err != nil || !keep {
			dst = dst[:len(dst)-1]
			if err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// decodeFloatHistogram reads one float histogram into h, overwriting every
// field.
func decodeFloatHistogram(b *decbuf, h *histogram.FloatHistogram) {
	h.CounterResetHint = histogram.CounterResetHint(b.byte())
	h.Schema = int32(b.varint())
	h.ZeroThreshold = b.float()
	h.ZeroCount = b.float()
	h.Count = b.float()
	h.Sum = b.float()
	h.PositiveSpans = decodeSpans(b, h.PositiveSpans)
	h.NegativeSpans = decodeSpans(b, h.NegativeSpans)
	h.PositiveBuckets = decodeFloats(b, h.PositiveBuckets)
	h.NegativeBuckets = decodeFloats(b, h.NegativeBuckets)
	if histogram.IsCustomBucketsSchema(h.Schema) {
		h.CustomValues = decodeFloats(b, h.CustomValues)
	} else {
		h.CustomValues = h.CustomValues[:0]
	}
}
