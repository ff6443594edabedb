package queue

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// This file keeps the labels of a queue's series compactly. Most label
// strings repeat across series (metric names, jobs, namespaces, a pod's
// name in each of its series): every string is interned once (interner),
// and a series' labels are a labelSet, a short string of ids: about 10 to
// 40 bytes for a series whose labels take 250, where the RW1 encoding
// alone took 300.
//
// A label whose value other series have too (a metric name, a job, a pod's
// name) is also interned as a label, with what both protocols need of it:
// its RW1 encoding (a TimeSeries' Label entry) and its name's and value's
// string ids (RW2 symbols). Consecutive labels a series shares with the
// series its cache stored before it (its target's: job, instance,
// namespace, pod, ...) are interned together as a run, with their RW1
// entries concatenated, so that an RW1 request copies a series' labels in
// two or three pieces. Runs and labels share one id space. A label whose
// value is the series' own (a uid, a trace id) stays a raw pair of string
// ids: it costs its string, not a table entry.

// labelChunkBits sets the size of the labelTable's chunks.
const labelChunkBits = 12

// labelChunk holds the labels of 1<<labelChunkBits ids.
type labelChunk [1 << labelChunkBits]labelEntry

// labelEntry is one label or run of the table: its RW1 encoding and,
// for a label, the string ids of its name and value, for a run the ids of
// its labels; side by side, so that an encoder reads one cache line per
// label. The fields are atomics for the reason the interner's are: a
// freed id is given to another label while encoders read other ids of the
// chunk.
type labelEntry struct {
	rw1         atomic.Pointer[byte]
	size        atomic.Uint32        // of rw1
	name, value atomic.Uint32        // a label's; for a run, value is the size of run
	run         atomic.Pointer[byte] // a run's label ids (appendID), nil for a label
}

// labelTable interns labels and runs. Ids are counted as the interner
// counts strings: add counts one holder of each id of the set it returns
// (and of each string of its raw labels),
// release removes them, and an id left with no holder is freed (its label
// and strings released) and later given to another label. Release is a
// promise that no one reads the ids any more (see seriesCache, which
// releases a series' set only once the garbage collector found its
// encoding unreachable).
//
// Adding takes a lock; reading a label does not, and is safe for ids
// obtained (through any synchronisation) from add.
type labelTable struct {
	strings *interner // names, values, help and unit texts

	mu     sync.Mutex
	labels map[uint64]uint32 // live labels by name and value string ids
	runs   map[string]uint32 // live runs by RW1 encoding
	refs   []uint32          // holders by id; id 0 is never used
	free   []uint32          // freed ids, reused first
	dir    atomic.Pointer[[]*labelChunk]
	// freed counts labels freed so far: an encoder that mapped label ids
	// to symbols trusts its map only while no label was freed since.
	freed atomic.Uint64

	// add's scratch: the label being encoded.
	enc []byte

	// orphans are the caches of queues that are done (seriesCache.discard),
	// whose encodings' labels are released once nothing refers to them;
	// the sweep of any cache of the table looks at them.
	orphansMu sync.Mutex
	orphans   []*seriesCache
}

// adopt takes over the cache of a queue that is done.
func (t *labelTable) adopt(c *seriesCache) {
	t.orphansMu.Lock()
	t.orphans = append(t.orphans, c)
	t.orphansMu.Unlock()
}

// sweepOrphans retires what the orphans hold, the first time it sees them,
// and releases the labels of their encodings nothing refers to any more;
// an orphan with none left is dropped.
func (t *labelTable) sweepOrphans() {
	t.orphansMu.Lock()
	defer t.orphansMu.Unlock()
	kept := t.orphans[:0]
	for _, c := range t.orphans {
		c.forgetAll()
		if c.sweepOwn(); len(c.retired) > 0 {
			kept = append(kept, c)
		}
	}
	clear(t.orphans[len(kept):])
	t.orphans = kept
}

// Labels is the label table the queues of one WAL share (Options.Labels):
// a label the WAL's series carry is then interned once, whatever the
// number of endpoints. Safe for concurrent use.
type Labels struct{ t *labelTable }

// NewLabels returns an empty table for queues to share.
func NewLabels() *Labels { return &Labels{t: newLabelTable(&interner{})} }

// Sweep lets go of what the queues that are done (Manager.Discard) hold:
// their series and encodings are garbage once nothing else refers to
// them (items still queued), and the labels only they held are released
// at a later sweep, once the collector has seen that. Queues sweep at
// every series reset; a caller that stopped queues (a reload) calls it so
// that their memory need not wait for the next reset.
func (l *Labels) Sweep() { l.t.sweepOrphans() }

func newLabelTable(strings *interner) *labelTable {
	t := &labelTable{strings: strings, labels: map[uint64]uint32{}, runs: map[string]uint32{}, refs: []uint32{0}}
	dir := []*labelChunk{new(labelChunk)}
	t.dir.Store(&dir)
	return t
}

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

// entry returns the table's entry of id.
func (d labelDir) entry(id uint32) *labelEntry {
	return &d[id>>labelChunkBits][id&(1<<labelChunkBits-1)]
}

// label returns the label of id, which must be held.
func (d labelDir) label(id uint32) label {
	e := d.entry(id)
	return label{rw1: unsafe.Slice(e.rw1.Load(), e.size.Load()), name: e.name.Load(), value: e.value.Load()}
}

// rw1 returns the RW1 encoding of label id, which must be held.
func (d labelDir) rw1(id uint32) []byte {
	e := d.entry(id)
	return unsafe.Slice(e.rw1.Load(), e.size.Load())
}

// addContext is what one caller of labelTable.add remembers between its
// calls: the labels (name and value string ids) of the series it added
// last. Queues sharing a table have one each.
type addContext struct {
	prev, pairs []uint64
	common      []bool // the label has a value other series have too
	inPrev      []bool // and the previous series had the label
	strings     []uint32
	set         []byte // the set add returned last
}

// pair is a label as its name's and value's string ids.
func pair(name, value uint32) uint64 { return uint64(name)<<32 | uint64(value) }

// add interns the labels of ls and returns their set, counting one holder
// of each label, run and raw label string it names. ctx is the caller's;
// the set is in its memory, valid until its next call.
//
// A label becomes a table entry when its value is not this series' own
// (other series hold the string already); consecutive entries the
// previous series had too form a run. Any other label stays raw.
func (t *labelTable) add(ls labels.Labels, ctx *addContext) []byte {
	// Every string, one holder each, under the interner's lock only.
	ctx.strings, ctx.common = t.strings.internSeriesLabels(ctx.strings[:0], ctx.common[:0], ls)
	ctx.pairs, ctx.inPrev = ctx.pairs[:0], ctx.inPrev[:0]
	size := 0
	ls.Range(func(l labels.Label) { size += pbRW1LabelSize(l.Name, l.Value) })
	for i := 0; i+1 < len(ctx.strings); i += 2 {
		p := pair(ctx.strings[i], ctx.strings[i+1])
		ctx.pairs = append(ctx.pairs, p)
		ctx.inPrev = append(ctx.inPrev, ctx.common[i/2] && slices.Contains(ctx.prev, p))
	}
	ctx.prev = append(ctx.prev[:0], ctx.pairs...)

	b := appendID(ctx.set[:0], uint32(size))
	b = appendID(b, uint32(len(ctx.pairs))<<1)
	t.mu.Lock()
	var ids [16]uint32
	for i := 0; i < len(ctx.pairs); {
		j := i + 1
		for ctx.inPrev[i] && j < len(ctx.pairs) && ctx.inPrev[j] {
			j++
		}
		switch {
		case j-i >= 2:
			run := ids[:0]
			for _, p := range ctx.pairs[i:j] {
				run = append(run, t.labelLocked(p))
			}
			b = appendID(b, t.runLocked(run)<<2|elemRun)
		case ctx.common[i]:
			b = appendID(b, t.labelLocked(ctx.pairs[i])<<2|elemLabel)
		default: // the set keeps the strings' holds
			b = appendID(b, uint32(ctx.pairs[i]>>32)<<2|elemRaw)
			b = appendID(b, uint32(ctx.pairs[i]))
		}
		i = j
	}
	t.mu.Unlock()
	ctx.set = b
	return b
}

// pbRW1LabelSize is the size of the RW1 Label entry of a label.
func pbRW1LabelSize(name, value string) int {
	n := pbStringFieldSize(name) + pbStringFieldSize(value)
	return 1 + pbVarintSize(uint64(n)) + n
}

// labelLocked returns the id of label p, of whose strings the caller
// holds one count each: a new label takes them over, an existing one has
// its own and they are released. The caller gets one holder of the label.
func (t *labelTable) labelLocked(p uint64) uint32 {
	name, value := uint32(p>>32), uint32(p)
	if id, ok := t.labels[p]; ok {
		t.refs[id]++
		t.strings.Release(name, value)
		return id
	}
	id := t.newIDLocked()
	enc := string(pbAppendRW1Label(t.enc[:0], rw1TagLabels, t.strings.String(name), t.strings.String(value)))
	e := t.snapshot().entry(id)
	e.rw1.Store(unsafe.StringData(enc))
	e.size.Store(uint32(len(enc)))
	e.name.Store(name)
	e.value.Store(value)
	t.labels[p] = id
	t.refs[id] = 1
	return id
}

// runLocked returns the id of the run of the given labels, of which the
// caller holds one count each: the run takes them over when it is new, and
// they are released when it exists already (it holds its own).
func (t *labelTable) runLocked(labelIDs []uint32) uint32 {
	dir := t.snapshot()
	t.enc = t.enc[:0]
	for _, id := range labelIDs {
		t.enc = append(t.enc, dir.rw1(id)...)
	}
	if id, ok := t.runs[string(t.enc)]; ok {
		t.refs[id]++
		for _, l := range labelIDs {
			t.refs[l]-- // the run holds them
		}
		return id
	}
	id := t.newIDLocked()
	var run []byte
	for _, l := range labelIDs {
		run = appendID(run, l)
	}
	enc := string(t.enc)
	e := t.snapshot().entry(id)
	e.rw1.Store(unsafe.StringData(enc))
	e.size.Store(uint32(len(enc)))
	e.value.Store(uint32(len(run)))
	e.run.Store(&run[0])
	t.runs[enc] = id
	t.refs[id] = 1
	return id
}

// newIDLocked returns a free id, reusing freed ones first.
func (t *labelTable) newIDLocked() uint32 {
	if k := len(t.free); k > 0 {
		id := t.free[k-1]
		t.free = t.free[:k-1]
		return id
	}
	id := uint32(len(t.refs))
	t.refs = append(t.refs, 0)
	if dir := t.snapshot(); int(id>>labelChunkBits) == len(dir) {
		grown := make([]*labelChunk, len(dir)+1, 2*len(dir)+1)
		copy(grown, dir)
		grown[len(dir)] = new(labelChunk)
		t.dir.Store(&grown)
	}
	return id
}

// withMetadata returns set with the given RW2 metadata instead of its
// own, counting one more holder of each of its labels, runs and raw label
// strings; help and unit are interned (and held by the new set).
func (t *labelTable) withMetadata(set labelSet, typ uint8, help, unit string) []byte {
	r := set.reader()
	t.mu.Lock()
	for k := r.from; k < len(set); {
		var kind, id, value uint32
		kind, id, value, k = element(set, k)
		if kind == elemRaw {
			t.strings.Acquire(id, value)
		} else {
			t.refs[id]++
		}
	}
	t.mu.Unlock()
	b := appendID(nil, uint32(r.rw1Size))
	if typ == 0 && help == "" && unit == "" {
		b = appendID(b, uint32(r.n)<<1)
	} else {
		b = appendID(b, uint32(r.n)<<1|1)
		b = appendID(b, uint32(typ))
		b = appendID(b, t.strings.Intern(help))
		b = appendID(b, t.strings.Intern(unit))
	}
	return append(b, set[r.from:]...)
}

// release removes one holder of each label, run and raw label string of
// set and of its metadata strings, freeing those left with none (see
// labelTable).
func (t *labelTable) release(set labelSet) {
	r := set.reader()
	t.mu.Lock()
	for k := r.from; k < len(set); {
		var kind, id uint32
		kind, id, _, k = element(set, k)
		if kind == elemRaw {
			continue // below, without the table's lock
		}
		if run := t.releaseLocked(id); run != "" {
			for j := 0; j < len(run); {
				var l uint32
				l, j = readID(run, j)
				t.releaseLocked(l)
			}
		}
	}
	t.mu.Unlock()
	for k := r.from; k < len(set); {
		var kind, id, value uint32
		kind, id, value, k = element(set, k)
		if kind == elemRaw {
			t.strings.Release(id, value)
		}
	}
	if _, help, unit, ok := set.metadata(); ok {
		t.strings.Release(help, unit)
	}
}

// releaseLocked removes one holder of id and frees it when none is left;
// it returns the label ids of a freed run, whose holds the caller
// releases.
func (t *labelTable) releaseLocked(id uint32) (run labelSet) {
	if t.refs[id] == 0 {
		t.mu.Unlock()
		panic("queue: labelTable.release of a label that is not held")
	}
	if t.refs[id]--; t.refs[id] > 0 {
		return ""
	}
	e := t.snapshot().entry(id)
	if p := e.run.Load(); p != nil {
		run = labelSet(unsafe.String(p, e.value.Load()))
		delete(t.runs, unsafe.String(e.rw1.Load(), e.size.Load()))
	} else {
		delete(t.labels, pair(e.name.Load(), e.value.Load()))
		t.strings.Release(e.name.Load(), e.value.Load())
	}
	e.rw1.Store(nil)
	e.size.Store(0)
	e.name.Store(0)
	e.value.Store(0)
	e.run.Store(nil)
	t.free = append(t.free, id)
	t.freed.Add(1)
	return run
}

// live returns how many labels and runs are interned now.
func (t *labelTable) live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.labels) + len(t.runs)
}
