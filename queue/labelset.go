package queue

import "unsafe"

// This file is the labelSet format: how a series' labels and metadata are
// written as ids (see labels.go for what the ids name), and how encoders
// read them back.

// labelSet is a series' labels, in label order, and its RW2 metadata, each
// number written as appendID writes it:
//
//	size of the RW1 Label entries, label count<<1 | has metadata,
//	[type, help string id, unit string id,] element...
//
// where an element, to the end, is a label id<<2, a run id<<2 | 1, or a
// raw label: its name's string id<<2 | 2, then its value's string id.
// The metadata part is there only when the series has metadata. What an
// encoder needs first comes first: nothing is walked twice.
type labelSet string

// Kinds of labelSet elements (the low two bits of their first number).
const (
	elemLabel = 0
	elemRun   = 1
	elemRaw   = 2
)

// element reads the set element at s[k:]: its kind, its id (a label's or
// a run's, or a raw label's name string id) and, for a raw label, its
// value string id; and the index after it.
func element(s labelSet, k int) (kind, id, value uint32, next int) {
	x := uint32(s[k])
	if x < 0x80 {
		k++
	} else {
		x, k = readLongID(s, k)
	}
	kind, id = x&3, x>>2
	if kind == elemRaw {
		value, k = readID(s, k)
	}
	return kind, id, value, k
}

// setReader walks a labelSet: n is the number of labels, and the elements
// run from from to the end.
type setReader struct {
	s          labelSet
	rw1Size    int
	n          int // labels
	typ        uint8
	help, unit uint32
	hasMeta    bool
	from       int // where the ids start
}

// reader reads the header of s: what the ids are preceded by. (Encoders
// call it for every sample: the common one-byte numbers take no call.)
func (s labelSet) reader() setReader {
	var r setReader
	r.s = s
	k := 0
	if b := s[0]; b < 0x80 {
		r.rw1Size, k = int(b), 1
	} else {
		var size uint32
		size, k = readLongID(s, 0)
		r.rw1Size = int(size)
	}
	n := uint32(s[k])
	if n < 0x80 {
		k++
	} else {
		n, k = readLongID(s, k)
	}
	r.n, r.hasMeta = int(n>>1), n&1 == 1
	if r.hasMeta {
		var typ uint32
		typ, k = readID(s, k)
		r.help, k = readID(s, k)
		r.unit, k = readID(s, k)
		r.typ = uint8(typ)
	}
	r.from = k
	return r
}

// labels yields the set's labels in label order, as their name's and
// value's string ids, those of runs included. (The encoders' loops read
// the elements themselves.)
func (r setReader) labels(dir labelDir) func(func(name, value uint32) bool) {
	return func(yield func(name, value uint32) bool) {
		for k := r.from; k < len(r.s); {
			var kind, id, value uint32
			kind, id, value, k = element(r.s, k)
			switch kind {
			case elemRaw:
				if !yield(id, value) {
					return
				}
			case elemLabel:
				if l := dir.label(id); !yield(l.name, l.value) {
					return
				}
			case elemRun:
				e := dir.entry(id)
				run := labelSet(unsafe.String(e.run.Load(), e.value.Load()))
				for j := 0; j < len(run); {
					var lid uint32
					lid, j = readID(run, j)
					if l := dir.label(lid); !yield(l.name, l.value) {
						return
					}
				}
			}
		}
	}
}

// rw1Size returns the size of the set's RW1 Label entries.
func (s labelSet) rw1Size() int {
	size, _ := readID(s, 0)
	return int(size)
}

// metadata returns the set's RW2 metadata, ok false when it has none.
func (s labelSet) metadata() (typ uint8, help, unit uint32, ok bool) {
	r := s.reader()
	return r.typ, r.help, r.unit, r.hasMeta
}

// appendID appends x to b in a prefix-length encoding: the leading one
// bits of the first byte say how many bytes follow (none for x < 128, one
// below 2^14, two below 2^21, three below 2^28, else four). Unlike a
// varint, its length is known from the first byte, so reading an id takes
// one branch.
func appendID(b []byte, x uint32) []byte {
	switch {
	case x < 1<<7:
		return append(b, byte(x))
	case x < 1<<14:
		return append(b, 0x80|byte(x>>8), byte(x))
	case x < 1<<21:
		return append(b, 0xC0|byte(x>>16), byte(x>>8), byte(x))
	case x < 1<<28:
		return append(b, 0xE0|byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	return append(b, 0xF0, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
}

// readID reads the number appendID wrote at s[k:], returning it and the
// index after it. The sets are written by this file: no bounds are
// checked beyond Go's own.
func readID(s labelSet, k int) (uint32, int) {
	if b := s[k]; b < 0x80 {
		return uint32(b), k + 1
	}
	return readLongID(s, k)
}

func readLongID(s labelSet, k int) (uint32, int) {
	b := uint32(s[k])
	switch {
	case b < 0xC0:
		return (b&0x3F)<<8 | uint32(s[k+1]), k + 2
	case b < 0xE0:
		return (b&0x1F)<<16 | uint32(s[k+1])<<8 | uint32(s[k+2]), k + 3
	case b < 0xF0:
		return (b&0x0F)<<24 | uint32(s[k+1])<<16 | uint32(s[k+2])<<8 | uint32(s[k+3]), k + 4
	}
	return uint32(s[k+1])<<24 | uint32(s[k+2])<<16 | uint32(s[k+3])<<8 | uint32(s[k+4]), k + 5
}
