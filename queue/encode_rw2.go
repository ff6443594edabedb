package queue

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// This file writes Remote-Write 2.0 requests (io.prometheus.write.v2.Request)
// as protobuf bytes directly. Label strings are interned once per series into
// process-wide integer ids (Interner); a request maps each id to its own
// symbol index through an array indexed by id and stamped with the request's
// generation, so no string is hashed per sample. The symbol table lists the
// strings in order of first use, the order writev2.SymbolsTable gives when
// fed the same calls, and the bytes equal gogo's Marshal of that Request.
//
// When a request's symbol table is small beside its series (a label-light
// queue sees the same few hundred strings in every request), the next
// request starts from the same table instead of an empty one (a carried
// table, see rw2Encoder.Reset), and each series keeps its encoded
// labels_refs for that table: a sample of a series seen before under the
// table copies its refs instead of mapping every id. The receiver sees a
// table that may hold strings the request does not use, which RW2 allows.

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

// rw2Refs is a series' encoded labels_refs and metadata fields, with its
// metadata, valid in the carried symbol table numbered epoch. Only the
// encoder of the shard owning the series writes it.
type rw2Refs struct {
	epoch      uint64
	typ        writev2.Metadata_MetricType
	help, unit uint32
	meta       int32  // where the metadata field starts
	fields     []byte // the labels_refs field (tag, length, refs), then the metadata field
}

// appendSample appends a TimeSeries entry of one sample of the series
// whose fields r holds: what AddSample writes, with lengths known ahead.
func (r *rw2Refs) appendSample(b []byte, t int64, v float64, st int64) []byte {
	ss := pbDoubleFieldSize(v) + pbInt64FieldSize(t) + pbInt64FieldSize(st) // at most 31
	b = append(b, rw2TagTimeSeries)
	b = pbAppendVarint(b, uint64(len(r.fields)+2+ss))
	b = append(b, r.fields[:r.meta]...)
	b = append(b, rw2TagSamples, byte(ss))
	b = pbAppendDouble(b, rw2TagSampleValue, v)
	b = pbAppendInt64(b, rw2TagSampleTimestamp, t)
	b = pbAppendInt64(b, rw2TagSampleStart, st)
	return append(b, r.fields[r.meta:]...)
}

// rw2Epochs numbers carried symbol tables process-wide, so that a series'
// cached refs can only match the table they were written for.
var rw2Epochs atomic.Uint64

// When a symbol table is carried (rw2Encoder.Reset): a request's own table
// starts one when its encoding is at most a quarter of the request's
// series entries (label-light series: node-exporter's hundreds of metric
// names included; not a queue where most series bring unique strings);
// the table is carried on while it has grown by at most half since, and
// is at most half of the last request's entries. Strings a request sends
// without using them thus stay a fraction of what it would send anyway.
const (
	rw2CarryStart = 4 // a fresh table is carried when 4 × its size ≤ the entries
	rw2CarryGrow  = 3 // … and on while 2 × its size ≤ 3 × the size it began with
)

// rw2Slot is where an interned id sits in the current request's symbol
// table; it is valid only when gen is the request's generation.
type rw2Slot struct{ gen, sym uint32 }

// rw2LabelSlot is where a label's name and value sit in the current
// request's symbol table; valid only when gen is the request's generation.
type rw2LabelSlot struct{ gen, name, value uint32 }

// rw2RunSlot is where a run's encoded refs sit in rw2Encoder.runRefs;
// valid only when gen is the encoder's label generation.
type rw2RunSlot struct{ gen, off, size uint32 }

// maxRunRefs bounds rw2Encoder.runRefs: past it, runs are encoded again.
const maxRunRefs = 1 << 20

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
	in  *Interner
	tab *labelTable
	dir labelDir // tab's chunks, refreshed when an id is beyond them

	gen   uint32
	slots []rw2Slot         // by interned string id
	syms  []string          // the request's symbol table, syms[0] == ""
	other map[string]uint32 // symbols of exemplar strings, which are not interned

	// lslots map label ids to the symbols of their name and value while
	// lgen is current: for one request, or for as long as a carried table
	// lasts and no label was freed (whose id could since name another
	// label; freed is the table's count of freed labels when lgen began).
	lgen   uint32
	lslots []rw2LabelSlot
	freed  uint64
	// rslots and runRefs keep, for runs (by id) under lgen, their labels'
	// refs as written: a run's later series copy them.
	rslots  []rw2RunSlot
	runRefs []byte

	// A carried table has an index of all its strings. Interned string
	// ids it mapped may have been freed and given to other strings since:
	// its string slots are trusted while no string was freed (sfreed is
	// the Interner's count of freed strings when gen began), and looked
	// up again in the index after.
	carried bool
	index   map[string]uint32
	sfreed  uint64
	// epoch numbers the carried table process-wide: a series sent under
	// it keeps its encoded refs for its next samples (encodedSeries.refs),
	// valid while the series' epoch is the table's. A series' labels and
	// strings are held while it is sent, so its refs stay right for as
	// long as the table lasts. seen marks the series seen once under it
	// (see cacheRefs).
	epoch uint64
	seen  *rw2Refs

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

	samples, histograms, exemplars int
}

// newRW2Encoder returns an empty request encoder for series whose labels
// are interned in tab.
func newRW2Encoder(tab *labelTable) *rw2Encoder {
	e := &rw2Encoder{in: tab.strings, tab: tab, dir: tab.snapshot()}
	e.Reset()
	return e
}

// Reset empties the request, keeping its buffers. The symbol table of the
// request it empties is carried over to the next one when Bytes found it
// small beside the request (see rw2CarryStart): the next request then
// starts with those strings, and adds its own.
func (e *rw2Encoder) Reset() {
	var carry bool
	switch {
	case e.seriesSize == 0: // Bytes not called, or an empty request
	case !e.carried:
		carry = rw2CarryStart*e.symSize <= e.seriesSize
		e.baseSize = e.symSize
	default:
		carry = 2*e.symSize <= rw2CarryGrow*e.baseSize && 2*e.symSize <= e.seriesSize
	}
	e.symSize, e.seriesSize = 0, 0
	e.samples, e.histograms, e.exemplars = 0, 0, 0
	if carry {
		if !e.carried {
			e.carry()
		}
		if freed := e.tab.freed.Load(); freed != e.freed {
			e.freed = freed
			e.nextLabelGen()
		}
		if freed := e.in.freed.Load(); freed != e.sfreed {
			e.sfreed = freed
			e.nextGen()
		}
		e.series = appendRW2Symbols(e.series[:0], e.syms)
		e.head, e.headSyms = len(e.series), len(e.syms)
		return
	}
	e.series = e.series[:0]
	e.head, e.headSyms = 0, 0
	e.carried = false
	clear(e.index)
	e.nextGen()
	e.sfreed = e.in.freed.Load()
	e.freed = e.tab.freed.Load()
	e.nextLabelGen()
	e.syms = append(e.syms[:0], "")
	clear(e.other)
}

// nextGen makes every string slot stale.
func (e *rw2Encoder) nextGen() {
	e.gen++
	if e.gen == 0 { // wrapped: old stamps could look current
		clear(e.slots)
		e.gen = 1
	}
}

// nextLabelGen makes every label and run slot stale.
func (e *rw2Encoder) nextLabelGen() {
	e.lgen++
	if e.lgen == 0 { // wrapped: old stamps could look current
		clear(e.lslots)
		clear(e.rslots)
		e.lgen = 1
	}
	e.runRefs = e.runRefs[:0]
}

// carry makes the current symbol table one that outlives its request: it
// gets an index of its strings (the exemplar strings of e.other among
// them). The label slots stay: they name symbols of this table.
func (e *rw2Encoder) carry() {
	e.carried = true
	e.epoch = rw2Epochs.Add(1)
	e.seen = &rw2Refs{epoch: e.epoch}
	if e.index == nil {
		e.index = make(map[string]uint32, len(e.syms))
	}
	for i, s := range e.syms[1:] {
		e.index[s] = uint32(i + 1)
	}
	clear(e.other)
}

// Counts returns how many samples, histograms and exemplars the request
// holds.
func (e *rw2Encoder) Counts() (samples, histograms, exemplars int) {
	return e.samples, e.histograms, e.exemplars
}

// symbol returns the request's symbol index of interned id, adding the
// string to the symbol table on its first use in this request.
func (e *rw2Encoder) symbol(id uint32) uint32 {
	if id == 0 {
		return 0
	}
	if int(id) >= len(e.slots) {
		e.growSlots(id)
	}
	slot := &e.slots[id]
	if slot.gen == e.gen {
		return slot.sym
	}
	s := e.in.String(id)
	if e.carried {
		sym := e.carriedString(s)
		*slot = rw2Slot{gen: e.gen, sym: sym}
		return sym
	}
	sym := uint32(len(e.syms))
	if len(e.other) > 0 { // an exemplar may have added the string already
		if o, ok := e.other[s]; ok {
			sym = o
		} else {
			e.syms = append(e.syms, s)
		}
	} else {
		e.syms = append(e.syms, s)
	}
	*slot = rw2Slot{gen: e.gen, sym: sym}
	return sym
}

// carriedString returns the symbol of s in the carried table, adding it
// if the table does not hold it yet.
func (e *rw2Encoder) carriedString(s string) uint32 {
	sym, ok := e.index[s]
	if !ok {
		sym = uint32(len(e.syms))
		e.syms = append(e.syms, s)
		e.index[s] = sym
	}
	return sym
}

func (e *rw2Encoder) growSlots(id uint32) {
	n := max(int(id)+1, e.in.Len(), 2*len(e.slots))
	e.slots = append(e.slots, make([]rw2Slot, n-len(e.slots))...)
}

// symbolString returns the symbol index of a string that need not be
// interned (exemplar labels), without interning it. A string some series
// of the request already added through its id is found through that id;
// any other is added by value (and found by value by later series: see
// symbol). The id from Lookup is held by no one here, so its String is
// never asked for: it could be freed and reused meanwhile, which is why
// the slot's symbol is checked against s.
func (e *rw2Encoder) symbolString(s string) uint32 {
	if s == "" {
		return 0
	}
	if e.carried {
		return e.carriedString(s)
	}
	if o, ok := e.other[s]; ok {
		return o
	}
	if id, ok := e.in.Lookup(s); ok && int(id) < len(e.slots) {
		if slot := e.slots[id]; slot.gen == e.gen && e.syms[slot.sym] == s {
			return slot.sym
		}
	}
	if e.other == nil {
		e.other = make(map[string]uint32)
	}
	sym := uint32(len(e.syms))
	e.syms = append(e.syms, s)
	e.other[s] = sym
	return sym
}

// label returns the label of id, which the series being added holds.
func (e *rw2Encoder) label(id uint32) label {
	if int(id>>labelChunkBits) >= len(e.dir) {
		e.dir = e.tab.snapshot()
	}
	return e.dir.label(id)
}

// labelSymbols returns the request's symbols of label id's name and value,
// adding them to the symbol table on their first use.
func (e *rw2Encoder) labelSymbols(id uint32) (name, value uint32) {
	if int(id) >= len(e.lslots) {
		n := max(int(id)+1, 2*len(e.lslots), 1024)
		e.lslots = append(e.lslots, make([]rw2LabelSlot, n-len(e.lslots))...)
	}
	if ls := &e.lslots[id]; ls.gen == e.lgen {
		return ls.name, ls.value
	}
	l := e.label(id)
	name, value = e.symbol(l.name), e.symbol(l.value)
	e.lslots[id] = rw2LabelSlot{gen: e.lgen, name: name, value: value}
	return name, value
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

// cached returns the fields d cached under the current carried table, or
// nil.
func (e *rw2Encoder) cached(d *encodedSeries) *rw2Refs {
	if r := d.refs; r != nil && e.carried && r.epoch == e.epoch && r.fields != nil {
		return r
	}
	return nil
}

// cacheRefs keeps the labels_refs field of d, its metadata field and its
// metadata, for its next sample under the carried table; the first time
// d is seen under the table, it is only marked (e.seen): the series of a
// large queue may not come back before the table ends, and their refs
// would cost memory for nothing.
func (e *rw2Encoder) cacheRefs(d *encodedSeries, refs []byte, m rw2Meta) {
	r := d.refs
	switch {
	case r == e.seen:
		r = new(rw2Refs) // seen twice: worth keeping
		d.refs = r
	case r == nil || r.fields == nil: // unseen, or marked under another table
		d.refs = e.seen
		return
	}
	r.epoch, r.typ, r.help, r.unit = e.epoch, m.typ, m.help, m.unit
	if need := len(refs) + rw2MaxMetadata; cap(r.fields) < need {
		r.fields = make([]byte, 0, need) // once: the metadata must not grow it again
	}
	r.fields = append(r.fields[:0], refs...)
	r.meta = int32(len(r.fields))
	r.fields = appendRW2Metadata(r.fields, m.typ, m.help, m.unit)
}

// appendRunRefs writes at b[i:] the name and value refs of the labels of
// run id, whose label ids are labels, and returns where it ended. The
// first series of a run under the label generation encodes them; the
// others copy what it wrote.
func (e *rw2Encoder) appendRunRefs(b []byte, i int, id uint32, labels labelSet) int {
	if int(id) < len(e.rslots) {
		if r := e.rslots[id]; r.gen == e.lgen {
			return i + copy(b[i:], e.runRefs[r.off:r.off+r.size])
		}
	} else {
		n := max(int(id)+1, 2*len(e.rslots), 1024)
		e.rslots = append(e.rslots, make([]rw2RunSlot, n-len(e.rslots))...)
	}
	end := e.appendRefs(b, i, labels)
	if len(e.runRefs) > maxRunRefs {
		e.nextLabelGen()
	}
	e.rslots[id] = rw2RunSlot{gen: e.lgen, off: uint32(len(e.runRefs)), size: uint32(end - i)}
	e.runRefs = append(e.runRefs, b[i:end]...)
	return end
}

// appendRefs writes at b[i:] the name and value refs of the labels whose
// ids run holds, and returns where it ended.
func (e *rw2Encoder) appendRefs(b []byte, i int, run labelSet) int {
	for k := 0; k < len(run); {
		id := uint32(run[k])
		if id < 0x80 {
			k++
		} else {
			id, k = readLongID(run, k)
		}
		i = e.appendRef(b, i, id)
	}
	return i
}

// appendRef writes at b[i:] the name and value refs of label id, and
// returns where it ended.
func (e *rw2Encoder) appendRef(b []byte, i int, id uint32) int {
	var name, value uint32
	if int(id) < len(e.lslots) && e.lslots[id].gen == e.lgen { // the common case, inlined
		name, value = e.lslots[id].name, e.lslots[id].value
	} else {
		name, value = e.labelSymbols(id)
	}
	return appendRefPair(b, i, name, value)
}

// appendRefPair writes at b[i:] a label's name and value refs.
func appendRefPair(b []byte, i int, name, value uint32) int {
	if name|value < 0x80 {
		b[i], b[i+1] = byte(name), byte(value)
		return i + 2
	}
	i += binary.PutUvarint(b[i:], uint64(name))
	return i + binary.PutUvarint(b[i:], uint64(value))
}

// entry returns the table entry of id, which the series being added
// holds.
func (e *rw2Encoder) entry(id uint32) *labelEntry {
	if int(id>>labelChunkBits) >= len(e.dir) {
		e.dir = e.tab.snapshot()
	}
	return e.dir.entry(id)
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

// appendRW2Symbols appends the Request.symbols fields of syms.
func appendRW2Symbols(b []byte, syms []string) []byte {
	for _, s := range syms {
		b = append(b, rw2TagSymbols) // repeated strings are written even when empty
		b = pbAppendVarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}
