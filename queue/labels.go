package queue

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// This file keeps the labels of a queue's series compactly. Most label
// strings repeat across series (metric names, jobs, namespaces, a pod's
// name in each of its series), so each distinct label, a name with its
// value, is interned once in a labelTable with what both protocols need of
// it: its RW1 encoding (a TimeSeries' Label entry) and the interned ids of
// its name and value (RW2 symbols). A series' labels are then a labelSet,
// a short string of label ids: about 20 to 40 bytes for a series whose
// labels take 250, where the RW1 encoding alone took 300.

// labelChunkBits sets the size of the labelTable's chunks.
const labelChunkBits = 12

// labelChunk holds the labels of 1<<labelChunkBits ids. Its fields are
// atomics for the reason the Interner's are: a freed id is given to
// another label while encoders read other ids of the chunk.
type labelChunk struct {
	rw1Data     [1 << labelChunkBits]atomic.Pointer[byte]
	rw1Len      [1 << labelChunkBits]atomic.Uint32
	name, value [1 << labelChunkBits]atomic.Uint32
}

// labelTable interns labels. Ids are counted as the Interner counts
// strings: add counts one holder of each id of the set it returns,
// release removes them, and an id left with no holder is freed (its label
// and strings released) and later given to another label. Release is a
// promise that no one reads the ids any more (see seriesCache, which
// releases a series' set only once the garbage collector found its
// encoding unreachable).
//
// Adding takes a lock; reading a label does not, and is safe for ids
// obtained (through any synchronisation) from add.
type labelTable struct {
	strings *Interner // names, values, help and unit texts

	mu   sync.Mutex
	ids  map[string]uint32 // live labels by RW1 encoding
	refs []uint32          // holders by id; id 0 is never used
	free []uint32          // freed ids, reused first
	dir  atomic.Pointer[[]*labelChunk]
	// freed counts labels freed so far: an encoder that mapped label ids
	// to symbols trusts its map only while no label was freed since.
	freed atomic.Uint64

	// add's scratch: the set being built, the label being encoded, and
	// the previous series' labels by position (consecutive series of a
	// record mostly share their target's labels).
	set, enc []byte
	prev     []uint32
}

func newLabelTable(strings *Interner) *labelTable {
	t := &labelTable{strings: strings, ids: map[string]uint32{}, refs: []uint32{0}}
	dir := []*labelChunk{new(labelChunk)}
	t.dir.Store(&dir)
	return t
}

// labelSet is a series' labels as label ids, and its RW2 metadata:
//
//	uvarint(size of the RW1 Label entries) uvarint(count) uvarint(id)...
//	[uvarint(type) uvarint(help string id) uvarint(unit string id)]
//
// The metadata part is there only when the series has metadata.
type labelSet string

// label is one interned label, as encoders read it.
type label struct {
	rw1         []byte // the Label entry: tag, length, name and value fields
	name, value uint32 // interned string ids
}

// labelDir is a snapshot of a labelTable's chunks: it reads every id
// handed out before it was taken.
type labelDir []*labelChunk

// snapshot returns the table's chunks as of now.
func (t *labelTable) snapshot() labelDir { return *t.dir.Load() }

// label returns the label of id, which must be held.
func (d labelDir) label(id uint32) label {
	c := d[id>>labelChunkBits]
	i := id & (1<<labelChunkBits - 1)
	return label{rw1: unsafe.Slice(c.rw1Data[i].Load(), c.rw1Len[i].Load()), name: c.name[i].Load(), value: c.value[i].Load()}
}

// rw1 returns the RW1 encoding of label id, which must be held.
func (d labelDir) rw1(id uint32) []byte {
	c := d[id>>labelChunkBits]
	i := id & (1<<labelChunkBits - 1)
	return unsafe.Slice(c.rw1Data[i].Load(), c.rw1Len[i].Load())
}

// add interns the labels of ls and returns their set, counting one holder
// of each label.
func (t *labelTable) add(ls labels.Labels) labelSet {
	t.mu.Lock()
	defer t.mu.Unlock()
	dir := t.snapshot()
	var ids [16]uint32
	idl := ids[:0]
	size, k := 0, 0
	ls.Range(func(l labels.Label) {
		t.enc = pbAppendRW1Label(t.enc[:0], rw1TagLabels, l.Name, l.Value)
		size += len(t.enc)
		var id uint32
		if k < len(t.prev) {
			if p := t.prev[k]; int(p) < len(t.refs) && t.refs[p] > 0 && string(dir.rw1(p)) == string(t.enc) {
				id = p
				t.refs[p]++
			}
		}
		if id == 0 {
			id = t.internLocked(l.Name, l.Value)
			dir = t.snapshot()
		}
		idl = append(idl, id)
		k++
	})
	t.prev = append(t.prev[:0], idl...)
	b := binary.AppendUvarint(t.set[:0], uint64(size))
	b = binary.AppendUvarint(b, uint64(len(idl)))
	for _, id := range idl {
		b = binary.AppendUvarint(b, uint64(id))
	}
	t.set = b
	return labelSet(b)
}

// internLocked returns the id of the label encoded in t.enc, giving it
// one if it is new, and counts one holder.
func (t *labelTable) internLocked(name, value string) uint32 {
	if id, ok := t.ids[string(t.enc)]; ok {
		t.refs[id]++
		return id
	}
	var id uint32
	if k := len(t.free); k > 0 {
		id = t.free[k-1]
		t.free = t.free[:k-1]
	} else {
		id = uint32(len(t.refs))
		t.refs = append(t.refs, 0)
		if dir := t.snapshot(); int(id>>labelChunkBits) == len(dir) {
			grown := make([]*labelChunk, len(dir)+1, 2*len(dir)+1)
			copy(grown, dir)
			grown[len(dir)] = new(labelChunk)
			t.dir.Store(&grown)
		}
	}
	enc := string(t.enc) // a copy: t.enc is reused
	c := t.snapshot()[id>>labelChunkBits]
	i := id & (1<<labelChunkBits - 1)
	c.rw1Data[i].Store(unsafe.StringData(enc))
	c.rw1Len[i].Store(uint32(len(enc)))
	c.name[i].Store(t.strings.Intern(name))
	c.value[i].Store(t.strings.Intern(value))
	t.ids[enc] = id
	t.refs[id] = 1
	return id
}

// withMetadata returns set with the given RW2 metadata instead of its
// own, counting one more holder of each of its labels; help and unit are
// interned (and held by the new set).
func (t *labelTable) withMetadata(set labelSet, typ uint8, help, unit string) labelSet {
	r := set.reader()
	t.mu.Lock()
	for id := range r.ids() {
		t.refs[id]++
	}
	t.mu.Unlock()
	b := []byte(set[:r.end])
	if typ != 0 || help != "" || unit != "" {
		b = binary.AppendUvarint(b, uint64(typ))
		b = binary.AppendUvarint(b, uint64(t.strings.Intern(help)))
		b = binary.AppendUvarint(b, uint64(t.strings.Intern(unit)))
	}
	return labelSet(b)
}

// release removes one holder of each label of set and of its metadata
// strings, freeing those left with none (see labelTable).
func (t *labelTable) release(set labelSet) {
	r := set.reader()
	t.mu.Lock()
	dir := t.snapshot()
	for id := range r.ids() {
		if t.refs[id] == 0 {
			t.mu.Unlock()
			panic("queue: labelTable.release of a label that is not held")
		}
		if t.refs[id]--; t.refs[id] > 0 {
			continue
		}
		c := dir[id>>labelChunkBits]
		i := id & (1<<labelChunkBits - 1)
		delete(t.ids, unsafe.String(c.rw1Data[i].Load(), c.rw1Len[i].Load()))
		t.strings.Release(c.name[i].Load(), c.value[i].Load())
		c.rw1Data[i].Store(nil)
		c.rw1Len[i].Store(0)
		c.name[i].Store(0)
		c.value[i].Store(0)
		t.free = append(t.free, id)
		t.freed.Add(1)
	}
	t.mu.Unlock()
	if _, help, unit, ok := set.metadata(); ok {
		t.strings.Release(help, unit)
	}
}

// live returns how many labels are interned now.
func (t *labelTable) live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ids)
}

// setReader walks a labelSet.
type setReader struct {
	s       labelSet
	rw1Size int
	n       int // labels
	from    int // where the ids start
	end     int // where they end
}

// reader returns a reader of s.
func (s labelSet) reader() setReader {
	size, k := uvarintString(s, 0)
	n, k := uvarintString(s, k)
	r := setReader{s: s, rw1Size: int(size), n: int(n), from: k}
	end := k
	for range n {
		_, end = uvarintString(s, end)
	}
	r.end = end
	return r
}

// ids yields the set's label ids in label order.
func (r setReader) ids() func(func(uint32) bool) {
	return func(yield func(uint32) bool) {
		k := r.from
		for range r.n {
			var id uint64
			id, k = uvarintString(r.s, k)
			if !yield(uint32(id)) {
				return
			}
		}
	}
}

// rw1Size returns the size of the set's RW1 Label entries.
func (s labelSet) rw1Size() int {
	size, _ := uvarintString(s, 0)
	return int(size)
}

// metadata returns the set's RW2 metadata, ok false when it has none.
func (s labelSet) metadata() (typ uint8, help, unit uint32, ok bool) {
	r := s.reader()
	if r.end == len(s) {
		return 0, 0, 0, false
	}
	t, k := uvarintString(s, r.end)
	h, k := uvarintString(s, k)
	u, _ := uvarintString(s, k)
	return uint8(t), uint32(h), uint32(u), true
}

// uvarintString decodes the uvarint at s[k:], returning it and the index
// after it. The sets are written by this file: no bounds are checked
// beyond Go's own.
func uvarintString(s labelSet, k int) (uint64, int) {
	if b := s[k]; b < 0x80 {
		return uint64(b), k + 1
	}
	var x uint64
	var shift uint
	for ; ; k++ {
		b := s[k]
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, k + 1
		}
		shift += 7
	}
}
