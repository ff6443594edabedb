package queue

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// This file writes Remote-Write 1.0 requests (prometheus.WriteRequest) as
// protobuf bytes directly, without building prompb structs. A series' labels
// are encoded once (appendRW1Labels; a queue keeps each label's encoding in
// its label table) and those bytes are copied into every TimeSeries that
// carries one of its samples. The layout is the one gogo
// protobuf's generated Marshal produces: fields in field-number order,
// proto3 zero scalars left out (including -0.0, which compares equal to 0),
// oneof members always written, repeated scalars packed.
//
// The wire helpers it shares with the RW2 encoder are in protowire.go, and
// the native histogram message, which both protocols send, in histogram_pb.go.

// Protobuf tags (field number << 3 | wire type) of the RW1 messages. Wire
// type 0 (varint) is left implicit: field<<3 alone.
const (
	rw1TagTimeSeries = 1<<3 | 2 // WriteRequest.timeseries
	rw1TagMetadata   = 3<<3 | 2 // WriteRequest.metadata

	rw1TagLabels     = 1<<3 | 2 // TimeSeries.labels, Exemplar.labels
	rw1TagSamples    = 2<<3 | 2 // TimeSeries.samples
	rw1TagExemplars  = 3<<3 | 2 // TimeSeries.exemplars
	rw1TagHistograms = 4<<3 | 2 // TimeSeries.histograms

	rw1TagLabelName  = 1<<3 | 2
	rw1TagLabelValue = 2<<3 | 2

	rw1TagSampleValue     = 1<<3 | 1 // Sample.value (double)
	rw1TagSampleTimestamp = 2 << 3   // Sample.timestamp (int64)

	rw1TagExemplarValue     = 2<<3 | 1
	rw1TagExemplarTimestamp = 3 << 3

	rw1TagMetaType   = 1 << 3
	rw1TagMetaFamily = 2<<3 | 2
	rw1TagMetaHelp   = 4<<3 | 2
	rw1TagMetaUnit   = 5<<3 | 2
)

// appendRW1Labels appends to dst the protobuf encoding of the labels field of
// a prompb.TimeSeries holding ls: one length-prefixed prompb.Label per label,
// in the order of ls. The result is meant to be computed once per series and
// passed to the rw1Encoder's Add methods for every sample of that series.
func appendRW1Labels(dst []byte, ls labels.Labels) []byte {
	ls.Range(func(l labels.Label) {
		dst = pbAppendRW1Label(dst, rw1TagLabels, l.Name, l.Value)
	})
	return dst
}

// pbAppendRW1Label appends one prompb.Label as field tag of its parent.
// Empty strings are left out, as gogo does for proto3 strings.
func pbAppendRW1Label(dst []byte, tag byte, name, value string) []byte {
	n := pbStringFieldSize(name) + pbStringFieldSize(value)
	dst = append(dst, tag)
	dst = pbAppendVarint(dst, uint64(n))
	dst = pbAppendString(dst, rw1TagLabelName, name)
	return pbAppendString(dst, rw1TagLabelValue, value)
}

// rw1Encoder builds the protobuf body of one Remote-Write 1.0 request,
// byte-identical to gogo's Marshal of the equivalent prompb.WriteRequest.
// Every Add call becomes its own TimeSeries entry holding one sample,
// histogram or exemplar, in call order; metadata entries follow all of them.
//
// The zero value is an empty request. Buffers are reused across Reset, so a
// warm encoder does not allocate. An rw1Encoder is not safe for concurrent use.
type rw1Encoder struct {
	series  []byte // the encoded WriteRequest.timeseries entries
	meta    []byte // the encoded WriteRequest.metadata entries
	out     []byte // series followed by meta, when meta is not empty
	scratch []byte // exemplar labels

	samples, histograms, exemplars, metadata int
}

// Reset empties the request, keeping its buffers.
func (e *rw1Encoder) Reset() {
	e.series = e.series[:0]
	e.meta = e.meta[:0]
	e.samples, e.histograms, e.exemplars, e.metadata = 0, 0, 0, 0
}

// streamBlocks hands the whole snappy blocks of the entries written so far
// to c, keeping the rest: a large request is compressed while it is built
// (before any metadata entry is added).
func (e *rw1Encoder) streamBlocks(c *snappyStream) {
	for len(e.series) >= snappyBlockSize {
		c.block(e.series[:snappyBlockSize])
		e.series = e.series[:copy(e.series, e.series[snappyBlockSize:])]
	}
}

// Counts returns how many samples, histograms, exemplars and metadata
// entries the request holds.
func (e *rw1Encoder) Counts() (samples, histograms, exemplars, metadata int) {
	return e.samples, e.histograms, e.exemplars, e.metadata
}

// AddSample adds a TimeSeries with the pre-encoded labels (see
// appendRW1Labels) and one sample.
func (e *rw1Encoder) AddSample(labels []byte, t int64, v float64) {
	b, n, ss := e.beginSample(len(labels), t, v)
	n += copy(b[n:], labels)
	e.endSample(b, n, ss, t, v)
}

// addSampleSet adds a TimeSeries with the labels of set, written from
// their interned RW1 entries (and raw labels from their strings in in),
// and one sample: AddSample without the pre-encoded labels.
func (e *rw1Encoder) addSampleSet(dir labelDir, in *interner, set labelSet, t int64, v float64) {
	r := set.reader()
	b, n, ss := e.beginSample(r.rw1Size, t, v)
	for k := r.from; k < len(set); {
		x := uint32(set[k])
		if x < 0x80 {
			k++
		} else {
			x, k = readLongID(set, k)
		}
		if x&3 != elemRaw { // a label or a run: its entries as they are
			n += copy(b[n:], dir.rw1(x>>2))
			continue
		}
		var value uint32
		value, k = readID(set, k)
		// Written in place: the room for it was counted in rw1Size.
		n += len(pbAppendRW1Label(b[n:n], rw1TagLabels, in.String(x>>2), in.String(value)))
	}
	e.endSample(b, n, ss, t, v)
}

// beginSample starts a TimeSeries of labelsSize bytes of labels and one
// sample: it grows the request once for all of it (this runs for every
// sample) and writes the entry's tag and length. It returns the buffer at
// its full capacity, where the labels go, and the size of the sample.
func (e *rw1Encoder) beginSample(labelsSize int, t int64, v float64) (b []byte, n, ss int) {
	ss = pbDoubleFieldSize(v) + pbInt64FieldSize(t) // at most 20: one length byte
	body := labelsSize + 2 + ss
	b = slices.Grow(e.series, 1+binary.MaxVarintLen64+body)
	n = len(b)
	b = b[:cap(b)]
	b[n] = rw1TagTimeSeries
	n++
	n += binary.PutUvarint(b[n:], uint64(body))
	return b, n, ss
}

// endSample writes the sample at b[n:], after the labels, and ends the
// entry begun by beginSample.
func (e *rw1Encoder) endSample(b []byte, n, ss int, t int64, v float64) {
	b[n], b[n+1] = rw1TagSamples, byte(ss)
	n += 2
	if v != 0 {
		b[n] = rw1TagSampleValue
		binary.LittleEndian.PutUint64(b[n+1:], math.Float64bits(v))
		n += 9
	}
	if t != 0 {
		b[n] = rw1TagSampleTimestamp
		n += 1 + binary.PutUvarint(b[n+1:], uint64(t))
	}
	e.series = b[:n]
	e.samples++
}

// appendRW1Set appends the RW1 Label entries of set to dst.
func appendRW1Set(dst []byte, dir labelDir, in *interner, set labelSet) []byte {
	for k := set.reader().from; k < len(set); {
		var kind, id, value uint32
		kind, id, value, k = element(set, k)
		if kind == elemRaw {
			dst = pbAppendRW1Label(dst, rw1TagLabels, in.String(id), in.String(value))
		} else {
			dst = append(dst, dir.rw1(id)...)
		}
	}
	return dst
}

// AddHistogram adds a TimeSeries with the pre-encoded labels and one
// integer native histogram (prompb.FromIntHistogram's message).
func (e *rw1Encoder) AddHistogram(labels []byte, t int64, h *histogram.Histogram) {
	var ph pbHistogram
	ph.setInt(h, t, 0)
	e.addHistogram(labels, &ph)
}

// AddFloatHistogram adds a TimeSeries with the pre-encoded labels and one
// float native histogram (prompb.FromFloatHistogram's message).
func (e *rw1Encoder) AddFloatHistogram(labels []byte, t int64, h *histogram.FloatHistogram) {
	var ph pbHistogram
	ph.setFloat(h, t, 0)
	e.addHistogram(labels, &ph)
}

func (e *rw1Encoder) addHistogram(labels []byte, ph *pbHistogram) {
	hs := ph.size()
	body := len(labels) + 1 + pbVarintSize(uint64(hs)) + hs

	b := e.series
	b = append(b, rw1TagTimeSeries)
	b = pbAppendVarint(b, uint64(body))
	b = append(b, labels...)
	b = append(b, rw1TagHistograms)
	b = pbAppendVarint(b, uint64(hs))
	b = ph.append(b)
	e.series = b
	e.histograms++
}

// AddExemplar adds a TimeSeries with the pre-encoded series labels and one
// exemplar with the given labels, value and timestamp. The exemplar labels
// are encoded on every call: exemplars are rare and their labels change.
func (e *rw1Encoder) AddExemplar(labels []byte, exemplarLabels labels.Labels, t int64, v float64) {
	e.scratch = appendRW1Labels(e.scratch[:0], exemplarLabels)
	xs := len(e.scratch) + pbDoubleFieldSize(v) + pbInt64FieldSize(t)
	body := len(labels) + 1 + pbVarintSize(uint64(xs)) + xs

	b := e.series
	b = append(b, rw1TagTimeSeries)
	b = pbAppendVarint(b, uint64(body))
	b = append(b, labels...)
	b = append(b, rw1TagExemplars)
	b = pbAppendVarint(b, uint64(xs))
	b = append(b, e.scratch...)
	b = pbAppendDouble(b, rw1TagExemplarValue, v)
	b = pbAppendInt64(b, rw1TagExemplarTimestamp, t)
	e.series = b
	e.exemplars++
}

// AddMetadata adds a MetricMetadata entry. typ is a model.MetricType string
// ("counter", "gauge", ...), mapped to the prompb enum the way
// prompb.FromMetadataType does (case-insensitively; unknown types become
// UNKNOWN).
func (e *rw1Encoder) AddMetadata(metricFamily string, typ, help, unit string) {
	mt := uint64(rw1MetricType(typ))
	n := pbStringFieldSize(metricFamily) + pbStringFieldSize(help) + pbStringFieldSize(unit)
	if mt != 0 {
		n += 1 + pbVarintSize(mt)
	}

	b := e.meta
	b = append(b, rw1TagMetadata)
	b = pbAppendVarint(b, uint64(n))
	if mt != 0 {
		b = append(b, rw1TagMetaType)
		b = pbAppendVarint(b, mt)
	}
	b = pbAppendString(b, rw1TagMetaFamily, metricFamily)
	b = pbAppendString(b, rw1TagMetaHelp, help)
	b = pbAppendString(b, rw1TagMetaUnit, unit)
	e.meta = b
	e.metadata++
}

// rw1MetricType maps a model.MetricType string to the prompb enum.
func rw1MetricType(typ string) prompb.MetricMetadata_MetricType {
	switch typ {
	case "counter":
		return prompb.MetricMetadata_COUNTER
	case "gauge":
		return prompb.MetricMetadata_GAUGE
	case "histogram":
		return prompb.MetricMetadata_HISTOGRAM
	case "gaugehistogram":
		return prompb.MetricMetadata_GAUGEHISTOGRAM
	case "summary":
		return prompb.MetricMetadata_SUMMARY
	case "info":
		return prompb.MetricMetadata_INFO
	case "stateset":
		return prompb.MetricMetadata_STATESET
	case "", "unknown":
		return prompb.MetricMetadata_UNKNOWN
	}
	// Rare spellings: the same rule as prompb.FromMetadataType.
	if v, ok := prompb.MetricMetadata_MetricType_value[strings.ToUpper(typ)]; ok {
		return prompb.MetricMetadata_MetricType(v)
	}
	return prompb.MetricMetadata_UNKNOWN
}

// Bytes returns the marshalled WriteRequest. The slice is valid until the
// next Reset or Add call.
func (e *rw1Encoder) Bytes() []byte {
	if len(e.meta) == 0 {
		return e.series
	}
	e.out = append(append(e.out[:0], e.series...), e.meta...)
	return e.out
}
