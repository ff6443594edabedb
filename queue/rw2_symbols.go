package queue

import "encoding/binary"

// This file is an RW2 request's symbol table. Label strings are interned
// once per series into process-wide integer ids (interner); a request maps
// each id to its own symbol index through an array indexed by id and
// stamped with the request's generation, so no string is hashed per sample.
// The symbol table lists the strings in order of first use, the order
// writev2.SymbolsTable gives when fed the same calls.
//
// When a request's symbol table is small beside its series (a label-light
// queue sees the same few hundred strings in every request), the next
// request starts from the same table instead of an empty one (a carried
// table, see rw2Encoder.Reset), and each series keeps its encoded
// labels_refs for that table (rw2_refs.go): a sample of a series seen
// before under the table copies its refs instead of mapping every id. The
// receiver sees a table that may hold strings the request does not use,
// which RW2 allows.

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

// appendRW2Symbols appends the Request.symbols fields of syms.
func appendRW2Symbols(b []byte, syms []string) []byte {
	for _, s := range syms {
		b = append(b, rw2TagSymbols) // repeated strings are written even when empty
		b = pbAppendVarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}
