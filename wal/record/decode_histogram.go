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
	dst, err = d.histograms(&b, t == HistogramSamplesV2, dst)
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

// keepSchema applies upstream's schema rules to a decoded histogram of the
// given schema. It reports whether to keep the entry, or an error if the
// resolution of a histogram with a reserved schema could not be reduced.
func (d *Decoder) keepSchema(schema int32, h interface{ ReduceResolution(int32) error }, n int) (bool, error) {
	if !histogram.IsKnownSchema(schema) {
		d.skipped++
		return false, nil
	}
	if schema > histogram.ExponentialSchemaMax {
		if err := h.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return false, fmt.Errorf("record: reducing resolution of histogram #%d: %w", n+1, err)
		}
	}
	return true, nil
}

// entryFrame reads the ref and timestamps in front of each entry of a
// histogram record. V1 records start with a base ref and time and give each
// entry as deltas from them; V2 records give the first entry in full (ref,
// time, start time) and the others as a delta from the previous ref, a
// delta from the first time and a start-time marker.
type entryFrame struct {
	v2      bool
	n       int // entries read so far
	baseRef uint64
	baseT   int64 // V1: the base time; V2: the first entry's time
	firstST int64
	ref     uint64
	t, st   int64
}

// next reads the next entry's header and reports whether there is an entry.
// Read errors are left in b for the caller to find after the entry's body.
func (f *entryFrame) next(b *decbuf) bool {
	switch {
	case f.v2 && f.n == 0:
		if len(b.b) == 0 {
			return false
		}
		f.ref, f.t, f.st = uint64(b.varint()), b.varint(), b.varint()
		f.baseT, f.firstST = f.t, f.st
	case f.v2:
		if len(b.b) == 0 {
			return false
		}
		f.ref += uint64(b.varint())
		f.t = f.baseT + b.varint()
		f.st = readST(b, f.firstST, f.st)
	default:
		if f.n == 0 {
			if len(b.b) == 0 {
				return false
			}
			f.baseRef, f.baseT = b.be64(), int64(b.be64())
		}
		if len(b.b) == 0 {
			return false
		}
		f.ref = f.baseRef + uint64(b.varint())
		f.t = f.baseT + b.varint()
	}
	f.n++
	return true
}

// histograms decodes the entries of an integer histogram record body.
func (d *Decoder) histograms(b *decbuf, v2 bool, dst []RefHistogramSample) ([]RefHistogramSample, error) {
	f := entryFrame{v2: v2}
	for f.next(b) {
		var s *RefHistogramSample
		dst, s = nextHistogramSlot(dst)
		s.Ref, s.ST, s.T = Ref(f.ref), f.st, f.t
		decodeHistogram(b, s.H)
		if b.err != nil {
			return dst[:len(dst)-1], nil
		}
		if keep, err := d.keepSchema(s.H.Schema, s.H, len(dst)-1); !keep {
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
	dst, err = d.floatHistograms(&b, t == FloatHistogramSamplesV2, dst)
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

// floatHistograms decodes the entries of a float histogram record body.
func (d *Decoder) floatHistograms(b *decbuf, v2 bool, dst []RefFloatHistogramSample) ([]RefFloatHistogramSample, error) {
	f := entryFrame{v2: v2}
	for f.next(b) {
		var s *RefFloatHistogramSample
		dst, s = nextFloatHistogramSlot(dst)
		s.Ref, s.ST, s.T = Ref(f.ref), f.st, f.t
		decodeFloatHistogram(b, s.FH)
		if b.err != nil {
			return dst[:len(dst)-1], nil
		}
		if keep, err := d.keepSchema(s.FH.Schema, s.FH, len(dst)-1); !keep {
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
