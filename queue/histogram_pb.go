package queue

import (
	"encoding/binary"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
)

// This file writes the native histogram message (Histogram, with its
// BucketSpan, delta and count fields), the same in RW1 and RW2 but for
// RW2's start timestamp.

// pbHistogram is the content of a remote-write Histogram message, the same
// in RW1 and RW2 except RW2's start timestamp (field 17). Integer histograms
// fill the *Int counts and deltas, float ones the float counts.
type pbHistogram struct {
	isFloat                   bool
	countInt, zeroCountInt    uint64
	count, zeroCount          float64
	sum, zeroThreshold        float64
	schema                    int32
	hint                      uint64
	neg, pos                  pbBuckets
	custom                    []float64
	timestamp, startTimestamp int64
}

// pbBuckets are one side's buckets (negative or positive): their spans,
// and their deltas (integer histograms) or counts (float ones).
type pbBuckets struct {
	spans  []histogram.Span
	deltas []int64
	counts []float64
}

// Protobuf tags of the Histogram and BucketSpan messages.
const (
	histTagCountInt       = 1 << 3
	histTagCountFloat     = 2<<3 | 1
	histTagSum            = 3<<3 | 1
	histTagSchema         = 4 << 3
	histTagZeroThreshold  = 5<<3 | 1
	histTagZeroCountInt   = 6 << 3
	histTagZeroCountFloat = 7<<3 | 1
	histTagNegSpans       = 8<<3 | 2
	histTagNegDeltas      = 9<<3 | 2
	histTagNegCounts      = 10<<3 | 2
	histTagPosSpans       = 11<<3 | 2
	histTagPosDeltas      = 12<<3 | 2
	histTagPosCounts      = 13<<3 | 2
	histTagResetHint      = 14 << 3
	histTagTimestamp      = 15 << 3
	histTagCustomValues   = 16<<3 | 2 // two bytes as a varint
	histTagStartTimestamp = 17 << 3   // two bytes as a varint

	spanTagOffset = 1 << 3
	spanTagLength = 2 << 3
)

func (p *pbHistogram) setInt(h *histogram.Histogram, t, st int64) {
	*p = pbHistogram{
		countInt:       h.Count,
		zeroCountInt:   h.ZeroCount,
		sum:            h.Sum,
		zeroThreshold:  h.ZeroThreshold,
		schema:         h.Schema,
		hint:           uint64(h.CounterResetHint),
		neg:            pbBuckets{spans: h.NegativeSpans, deltas: h.NegativeBuckets},
		pos:            pbBuckets{spans: h.PositiveSpans, deltas: h.PositiveBuckets},
		custom:         h.CustomValues,
		timestamp:      t,
		startTimestamp: st,
	}
}

func (p *pbHistogram) setFloat(h *histogram.FloatHistogram, t, st int64) {
	*p = pbHistogram{
		isFloat:        true,
		count:          h.Count,
		zeroCount:      h.ZeroCount,
		sum:            h.Sum,
		zeroThreshold:  h.ZeroThreshold,
		schema:         h.Schema,
		hint:           uint64(h.CounterResetHint),
		neg:            pbBuckets{spans: h.NegativeSpans, counts: h.NegativeBuckets},
		pos:            pbBuckets{spans: h.PositiveSpans, counts: h.PositiveBuckets},
		custom:         h.CustomValues,
		timestamp:      t,
		startTimestamp: st,
	}
}

// size returns the encoded size of the Histogram message (without its own
// tag and length).
func (p *pbHistogram) size() int {
	n := 0
	if p.isFloat {
		n += 9 + 9 // count_float, zero_count_float: oneof members are always written
	} else {
		n += 1 + pbVarintSize(p.countInt) + 1 + pbVarintSize(p.zeroCountInt)
	}
	n += pbDoubleFieldSize(p.sum) + pbDoubleFieldSize(p.zeroThreshold)
	if p.schema != 0 {
		n += 1 + pbVarintSize(pbZigzag32(p.schema))
	}
	n += pbSpansSize(p.neg.spans) + pbSpansSize(p.pos.spans)
	n += pbPackedFieldSize(1, pbSint64sSize(p.neg.deltas)) + pbPackedFieldSize(1, pbSint64sSize(p.pos.deltas))
	n += pbPackedFieldSize(1, 8*len(p.neg.counts)) + pbPackedFieldSize(1, 8*len(p.pos.counts))
	if p.hint != 0 {
		n += 1 + pbVarintSize(p.hint)
	}
	n += pbInt64FieldSize(p.timestamp)
	n += pbPackedFieldSize(2, 8*len(p.custom))
	if p.startTimestamp != 0 {
		n += 2 + pbVarintSize(uint64(p.startTimestamp))
	}
	return n
}

// append appends the Histogram message body (without its own tag and length).
func (p *pbHistogram) append(b []byte) []byte {
	if p.isFloat {
		b = append(b, histTagCountFloat)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.count))
	} else {
		b = append(b, histTagCountInt)
		b = pbAppendVarint(b, p.countInt)
	}
	b = pbAppendDouble(b, histTagSum, p.sum)
	if p.schema != 0 {
		b = append(b, histTagSchema)
		b = pbAppendVarint(b, pbZigzag32(p.schema))
	}
	b = pbAppendDouble(b, histTagZeroThreshold, p.zeroThreshold)
	if p.isFloat {
		b = append(b, histTagZeroCountFloat)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.zeroCount))
	} else {
		b = append(b, histTagZeroCountInt)
		b = pbAppendVarint(b, p.zeroCountInt)
	}
	b = pbAppendSpans(b, histTagNegSpans, p.neg.spans)
	b = pbAppendSint64s(b, histTagNegDeltas, p.neg.deltas)
	b = pbAppendDoubles(b, histTagNegCounts, p.neg.counts)
	b = pbAppendSpans(b, histTagPosSpans, p.pos.spans)
	b = pbAppendSint64s(b, histTagPosDeltas, p.pos.deltas)
	b = pbAppendDoubles(b, histTagPosCounts, p.pos.counts)
	if p.hint != 0 {
		b = append(b, histTagResetHint)
		b = pbAppendVarint(b, p.hint)
	}
	b = pbAppendInt64(b, histTagTimestamp, p.timestamp)
	if len(p.custom) > 0 {
		b = pbAppendVarint(b, histTagCustomValues)
		b = pbAppendVarint(b, uint64(8*len(p.custom)))
		for _, v := range p.custom {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	if p.startTimestamp != 0 {
		b = pbAppendVarint(b, histTagStartTimestamp)
		b = pbAppendVarint(b, uint64(p.startTimestamp))
	}
	return b
}

func pbSpanSize(s histogram.Span) int {
	n := 0
	if s.Offset != 0 {
		n += 1 + pbVarintSize(pbZigzag32(s.Offset))
	}
	if s.Length != 0 {
		n += 1 + pbVarintSize(uint64(s.Length))
	}
	return n
}

func pbSpansSize(spans []histogram.Span) int {
	n := 0
	for _, s := range spans {
		n += 2 + pbSpanSize(s) // a span is at most 12 bytes: one length byte
	}
	return n
}

func pbAppendSpans(b []byte, tag byte, spans []histogram.Span) []byte {
	for _, s := range spans {
		b = append(b, tag, byte(pbSpanSize(s)))
		if s.Offset != 0 {
			b = append(b, spanTagOffset)
			b = pbAppendVarint(b, pbZigzag32(s.Offset))
		}
		if s.Length != 0 {
			b = append(b, spanTagLength)
			b = pbAppendVarint(b, uint64(s.Length))
		}
	}
	return b
}

func pbSint64sSize(vs []int64) int {
	n := 0
	for _, v := range vs {
		n += pbVarintSize(pbZigzag64(v))
	}
	return n
}

func pbAppendSint64s(b []byte, tag byte, vs []int64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(b, tag)
	b = pbAppendVarint(b, uint64(pbSint64sSize(vs)))
	for _, v := range vs {
		b = pbAppendVarint(b, pbZigzag64(v))
	}
	return b
}

func pbAppendDoubles(b []byte, tag byte, vs []float64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(b, tag)
	b = pbAppendVarint(b, uint64(8*len(vs)))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}
