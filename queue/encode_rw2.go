package queue

import (
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// This file writes Remote-Write 2.0 requests (io.prometheus.write.v2.Request)
// as protobuf bytes directly: the encoder, each Add call's TimeSeries entry
// (its labels_refs, sample or histogram, exemplars and metadata), and the
// request's bytes, equal to gogo's Marshal of that Request. How label
// strings become the request's symbols, and when a symbol table is carried
// over to the next request (Reset), are in rw2_symbols.go; the labels_refs a
// series keeps under a carried table are in rw2_refs.go.

// Protobuf tags of the RW2 messages.
const (
	rw2TagSymbols    = 4<<3 | 2 // Request.symbols
	rw2TagTimeSeries = 5<<3 | 2 // Request.timeseries

	rw2TagLabelsRefs = 1<<3 | 2 // TimeSeries.labels_refs, Exemplar.labels_refs (packed)
	rw2TagSamples    = 2<<3 | 2
	rw2TagHistograms = 3<<3 | 2
	rw2TagExemplars  = 4<<3 | 2
	rw2TagMetadata   = 5<<3 | 2 // non-nullable: always written, even empty

	rw2TagSampleValue     = 1<<3 | 1
	rw2TagSampleTimestamp = 2 << 3
	rw2TagSampleStart     = 3 << 3

	rw2TagExemplarValue     = 2<<3 | 1
	rw2TagExemplarTimestamp = 3 << 3

	rw2TagMetaType = 1 << 3
	rw2TagMetaHelp = 3 << 3
	rw2TagMetaUnit = 4 << 3
)

// rw2Encoder builds the protobuf body of one Remote-Write 2.0 request. Every
// Add call becomes its own TimeSeries entry, in call order, with the series'
// metadata. Symbols are numbered in order of first use; for each call the
// series' help and unit come first, then its labels, then exemplar labels.
//
// A request's symbol table may be carried over to the next (see Reset).
//
// Make one with newRW2Encoder. Buffers are reused across Reset, so a warm
// encoder does not allocate. An rw2Encoder is not safe for concurrent use;
// several encoders may share one labelTable.
type rw2Encoder struct {
	in   *interner
	tab  *labelTable
	dir  labelDir // tab's chunks, refreshed when an id is beyond them
	lane uint8    // the queue's Options.Lane: the encodings whose refs it caches

	rw2StringSymbols
	rw2LabelSymbols

	// epoch numbers the carried table process-wide: a series sent under
	// it keeps its encoded refs for its next samples (encodedSeries.refs),
	// valid while the series' epoch is the table's. A series' labels and
	// strings are held while it is sent, so its refs stay right for as
	// long as the table lasts. seen marks the series seen once under it
	// (see cacheRefs).
	epoch uint64
	seen  *rw2Refs

	rw2Body

	samples, histograms, exemplars int
}

// rw2StringSymbols is the request's symbol table: the symbols of
// interned strings by id while gen is current, and of the strings that
// are not interned (exemplar labels).
type rw2StringSymbols struct {
	gen   uint32
	slots []rw2Slot         // by interned string id
	syms  []string          // the request's symbol table, syms[0] == ""
	other map[string]uint32 // symbols of exemplar strings, which are not interned

	// A carried table has an index of all its strings. Interned string
	// ids it mapped may have been freed and given to other strings since:
	// its string slots are trusted while no string was freed (sfreed is
	// the interner's count of freed strings when gen began), and looked
	// up again in the index after.
	carried bool
	index   map[string]uint32
	sfreed  uint64
}

// rw2LabelSymbols map label ids to the symbols of their name and value
// while lgen is current: for one request, or for as long as a carried
// table lasts and no label was freed (whose id could since name another
// label; freed is the table's count of freed labels when lgen began).
type rw2LabelSymbols struct {
	lgen   uint32
	lslots []rw2LabelSlot
	freed  uint64
	// rslots and runRefs keep, for runs (by id) under lgen, their labels'
	// refs as written: a run's later series copy them.
	rslots  []rw2RunSlot
	runRefs []byte
}

// rw2Body is the encoded request.
type rw2Body struct {
	// series holds the encoded Request.timeseries entries behind head
	// bytes of symbols: under a carried table, Reset writes the table's
	// headSyms symbols there, so that Bytes, when the request added none,
	// returns series as it is.
	series         []byte
	head, headSyms int
	out            []byte

	// What Bytes wrote, for Reset's choice to carry the table over, and
	// the size of the table that began the carried one.
	symSize, seriesSize, baseSize int
}

// newRW2Encoder returns an empty request encoder for series whose labels
// are interned in tab.
func newRW2Encoder(tab *labelTable) *rw2Encoder {
	e := &rw2Encoder{in: tab.strings, tab: tab, dir: tab.snapshot()}
	e.Reset()
	return e
}

// Counts returns how many samples, histograms and exemplars the request
// holds.
func (e *rw2Encoder) Counts() (samples, histograms, exemplars int) {
	return e.samples, e.histograms, e.exemplars
}

// begin starts a TimeSeries entry for d at the end of the request: it maps
// the series' help, unit and labels to symbols, in upstream's order, and
// writes the entry's tag and its labels_refs. Lengths are written as one
// byte and widened by endLen in the rare case they need more. It returns
// the position of the entry's length byte, and the series' metadata.
func (e *rw2Encoder) begin(d *encodedSeries) (b []byte, start int, m rw2Meta) {
	if r := e.cached(d); r != nil {
		// Seen before under this carried table: copy its refs.
		b = append(e.series, rw2TagTimeSeries, 0)
		start = len(b) - 1
		return append(b, r.fields[:r.meta]...), start, rw2Meta{typ: r.typ, help: r.help, unit: r.unit}
	}
	r := d.set.reader()
	m = rw2Meta{typ: writev2.Metadata_MetricType(r.typ), help: e.symbol(r.help), unit: e.symbol(r.unit)}
	// Room for the entry's header, every ref as a 5-byte varint, and a
	// sample and metadata, so that the loop below never grows the buffer.
	b = slices.Grow(e.series, 4+10*r.n+64)
	start = len(b) + 1
	b = append(b, rw2TagTimeSeries, 0)
	if r.n == 0 {
		return b, start, m
	}
	b = append(b, rw2TagLabelsRefs, 0)
	refsLen := len(b) - 1
	i := len(b)
	b = b[:i+10*r.n]
	for k := r.from; k < len(r.s); {
		x := uint32(r.s[k])
		if x < 0x80 {
			k++
		} else {
			x, k = readLongID(r.s, k)
		}
		switch id := x >> 2; x & 3 {
		case elemLabel:
			i = e.appendRef(b, i, id)
		case elemRun:
			le := e.entry(id)
			i = e.appendRunRefs(b, i, id, labelSet(unsafe.String(le.run.Load(), le.value.Load())))
		default: // a raw label: its strings' ids
			var value uint32
			value, k = readID(r.s, k)
			i = appendRefPair(b, i, e.symbol(id), e.symbol(value))
		}
	}
	b = endLen(b[:i], refsLen)
	if e.carried {
		e.cacheRefs(d, b[refsLen-1:], m)
	}
	return b, start, m
}

// rw2Meta is a series' metadata as a request sends it: its type and the
// symbols of its help and unit.
type rw2Meta struct {
	typ        writev2.Metadata_MetricType
	help, unit uint32
}

// end finishes the TimeSeries entry begun at start with the series'
// metadata (always written: the field is not nullable).
func (e *rw2Encoder) end(b []byte, start int, m rw2Meta) {
	e.series = endLen(appendRW2Metadata(b, m.typ, m.help, m.unit), start)
}

// rw2MaxMetadata is the longest metadata field: its tag and length, the
// type (tag and 1 byte) and help and unit (tag and a symbol of up to 5).
const rw2MaxMetadata = 2 + 2 + 6 + 6

// appendRW2Metadata appends a TimeSeries' metadata field.
func appendRW2Metadata(b []byte, typ writev2.Metadata_MetricType, help, unit uint32) []byte {
	b = append(b, rw2TagMetadata, 0)
	meta := len(b) - 1
	if typ != 0 {
		b = append(b, rw2TagMetaType)
		b = pbAppendVarint(b, uint64(typ))
	}
	if help != 0 {
		b = append(b, rw2TagMetaHelp)
		b = pbAppendVarint(b, uint64(help))
	}
	if unit != 0 {
		b = append(b, rw2TagMetaUnit)
		b = pbAppendVarint(b, uint64(unit))
	}
	b[meta] = byte(len(b) - meta - 1) // at most 14
	return b
}

// endLen writes the length of the message that follows the length byte
// reserved at b[pos] and runs to the end of b, widening the varint (and
// moving the message) when the length needs more than one byte.
func endLen(b []byte, pos int) []byte {
	n := len(b) - pos - 1
	if n < 0x80 {
		b[pos] = byte(n)
		return b
	}
	k := pbVarintSize(uint64(n)) - 1
	b = slices.Grow(b, k)[:len(b)+k]
	copy(b[pos+1+k:], b[pos+1:len(b)-k])
	binary.PutUvarint(b[pos:], uint64(n))
	return b
}

// AddSample adds a TimeSeries for d with one sample; st is the sample's
// start (created) timestamp, 0 when unknown.
func (e *rw2Encoder) AddSample(d *encodedSeries, t int64, v float64, st int64) {
	if r := e.cached(d); r != nil {
		e.series = r.appendSample(e.series, t, v, st)
		e.samples++
		return
	}
	b, start, m := e.begin(d)
	ss := pbDoubleFieldSize(v) + pbInt64FieldSize(t) + pbInt64FieldSize(st) // at most 31
	b = append(b, rw2TagSamples, byte(ss))
	b = pbAppendDouble(b, rw2TagSampleValue, v)
	b = pbAppendInt64(b, rw2TagSampleTimestamp, t)
	b = pbAppendInt64(b, rw2TagSampleStart, st)
	e.end(b, start, m)
	e.samples++
}

// AddHistogram adds a TimeSeries for d with one integer native histogram
// (writev2.FromIntHistogram's message); st is its start timestamp or 0.
func (e *rw2Encoder) AddHistogram(d *encodedSeries, t int64, h *histogram.Histogram, st int64) {
	var ph pbHistogram
	ph.setInt(h, t, st)
	e.addHistogram(d, &ph)
}

// AddFloatHistogram adds a TimeSeries for d with one float native histogram
// (writev2.FromFloatHistogram's message); st is its start timestamp or 0.
func (e *rw2Encoder) AddFloatHistogram(d *encodedSeries, t int64, h *histogram.FloatHistogram, st int64) {
	var ph pbHistogram
	ph.setFloat(h, t, st)
	e.addHistogram(d, &ph)
}

// addHistogram adds a TimeSeries for d with one histogram and the given
// exemplars (none for a plain histogram).
func (e *rw2Encoder) addHistogram(d *encodedSeries, ph *pbHistogram, exemplars ...rw2Exemplar) {
	b, start, m := e.begin(d)
	b = append(b, rw2TagHistograms, 0)
	hl := len(b) - 1
	b = endLen(ph.append(b), hl)
	for _, x := range exemplars {
		b = e.appendExemplar(b, x.Labels, x.T, x.V)
	}
	e.end(b, start, m)
	e.histograms++
	e.exemplars += len(exemplars)
}

// AddHistogramWithExemplars adds a TimeSeries for d with one native
// histogram, integer (h) or float (fh), and exemplars, as
// AddSampleWithExemplars does for a sample.
func (e *rw2Encoder) AddHistogramWithExemplars(d *encodedSeries, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram, st int64, exemplars []rw2Exemplar) {
	var ph pbHistogram
	if h != nil {
		ph.setInt(h, t, st)
	} else {
		ph.setFloat(fh, t, st)
	}
	e.addHistogram(d, &ph, exemplars...)
}

// AddExemplar adds a TimeSeries for d with one exemplar. The exemplar's
// label strings are not interned; they must stay unchanged until Reset.
// RW2 forbids a series entry without a sample or histogram, and receivers
// such as upstream Prometheus refuse it: prefer AddSampleWithExemplars.
func (e *rw2Encoder) AddExemplar(d *encodedSeries, exemplarLabels labels.Labels, t int64, v float64) {
	b, start, m := e.begin(d)
	b = e.appendExemplar(b, exemplarLabels, t, v)
	e.end(b, start, m)
	e.exemplars++
}

// rw2Exemplar is an exemplar to send with a sample.
type rw2Exemplar struct {
	Labels labels.Labels
	T      int64
	V      float64
}

// AddSampleWithExemplars adds a TimeSeries for d with one sample and the
// exemplars observed with it, which is how the RW2 specification wants
// exemplars sent.
func (e *rw2Encoder) AddSampleWithExemplars(d *encodedSeries, t int64, v float64, st int64, exemplars []rw2Exemplar) {
	b, start, m := e.begin(d)
	ss := pbDoubleFieldSize(v) + pbInt64FieldSize(t) + pbInt64FieldSize(st) // at most 31
	b = append(b, rw2TagSamples, byte(ss))
	b = pbAppendDouble(b, rw2TagSampleValue, v)
	b = pbAppendInt64(b, rw2TagSampleTimestamp, t)
	b = pbAppendInt64(b, rw2TagSampleStart, st)
	for _, x := range exemplars {
		b = e.appendExemplar(b, x.Labels, x.T, x.V)
	}
	e.end(b, start, m)
	e.samples++
	e.exemplars += len(exemplars)
}

// appendExemplar appends one exemplars field of a TimeSeries entry.
func (e *rw2Encoder) appendExemplar(b []byte, exemplarLabels labels.Labels, t int64, v float64) []byte {
	b = append(b, rw2TagExemplars, 0)
	xl := len(b) - 1
	if !exemplarLabels.IsEmpty() {
		b = append(b, rw2TagLabelsRefs, 0)
		rl := len(b) - 1
		exemplarLabels.Range(func(l labels.Label) {
			b = pbAppendVarint(b, uint64(e.symbolString(l.Name)))
			b = pbAppendVarint(b, uint64(e.symbolString(l.Value)))
		})
		b = endLen(b, rl)
	}
	b = pbAppendDouble(b, rw2TagExemplarValue, v)
	b = pbAppendInt64(b, rw2TagExemplarTimestamp, t)
	return endLen(b, xl)
}

// Bytes returns the marshalled Request: the symbol table, then the time
// series. The slice is valid until the next Reset or Add call.
func (e *rw2Encoder) Bytes() []byte {
	entries := e.series[e.head:]
	if e.headSyms == len(e.syms) { // the carried table, written by Reset, is all
		e.symSize, e.seriesSize = e.head, len(entries)
		return e.series
	}
	n := len(entries)
	for _, s := range e.syms {
		n += 1 + pbVarintSize(uint64(len(s))) + len(s)
	}
	b := e.out[:0]
	if cap(b) < n {
		b = make([]byte, 0, n+n/4)
	}
	b = appendRW2Symbols(b, e.syms)
	e.symSize, e.seriesSize = len(b), len(entries)
	b = append(b, entries...)
	e.out = b
	return b
}
