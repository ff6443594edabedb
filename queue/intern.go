package queue

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// This file interns strings: label names and values, help and unit texts
// get process-wide integer ids (RW2 symbols are mapped from them per
// request), reference counted so that churned series' strings are freed.

// internChunkBits sets the size of the interner's string chunks.
const internChunkBits = 12

// internChunk holds the strings of 1<<internChunkBits ids, each as its
// data pointer and length. They are atomics because a freed id is reused
// for another string (see Release) while encoders read the strings of
// other ids of the same chunk; an id's two words only change while no
// holder of the id exists, so a reader never sees a torn pair.
type internChunk struct {
	data [1 << internChunkBits]atomic.Pointer[byte]
	size [1 << internChunkBits]atomic.Uint32
}

// interner gives each distinct string a process-wide integer id, starting
// with 0 for the empty string, and keeps the string of every id. Interning
// takes a lock; String does not, and is safe for ids obtained (through any
// synchronisation) from Intern.
//
// Ids are reference counted. Every Intern and InternLabels counts one
// holder of each id it returns, Acquire adds one, Release removes one; an
// id whose last holder is released is freed at once (its string dropped)
// and later given to another string. Release is therefore a promise that
// no one will look the id up any more: the caller must know that nothing
// can still read it (see seriesCache, which releases a series' ids only
// once the garbage collector found its encoding unreachable). Callers
// that never release simply keep their ids for good.
//
// The zero value is ready to use.
type interner struct {
	mu   sync.Mutex
	ids  map[string]uint32 // live strings
	refs []uint32          // holders by id; guarded by mu
	free []uint32          // freed ids, reused first; guarded by mu
	n    atomic.Uint32     // ids handed out, including 0: the highest id + 1
	// freed counts the ids freed so far: an encoder that mapped ids to
	// symbols trusts its map only while none was freed since.
	freed atomic.Uint64

	dir atomic.Pointer[[]*internChunk] // chunks of strings by id
}

// Intern returns the id of s, giving it a new one if s is not interned,
// and counts one holder of it.
func (in *interner) Intern(s string) uint32 {
	if s == "" {
		return 0
	}
	in.mu.Lock()
	id := in.internLocked(s)
	in.mu.Unlock()
	return id
}

// InternLabels appends the ids of the names and values of ls, as pairs in
// the order of ls, to dst, counting one holder of each.
func (in *interner) InternLabels(dst []uint32, ls labels.Labels) []uint32 {
	in.mu.Lock()
	ls.Range(func(l labels.Label) {
		dst = append(dst, in.internLocked(l.Name), in.internLocked(l.Value))
	})
	in.mu.Unlock()
	return dst
}

// internSeriesLabels is InternLabels that also tells, for each label,
// whether its value was held by someone else already (shared appends
// one bool per label): a value only this series has is worth no more
// than its string.
func (in *interner) internSeriesLabels(dst []uint32, shared []bool, ls labels.Labels) ([]uint32, []bool) {
	in.mu.Lock()
	ls.Range(func(l labels.Label) {
		v := in.internLocked(l.Value)
		dst = append(dst, in.internLocked(l.Name), v)
		shared = append(shared, v == 0 || in.refs[v] > 1)
	})
	in.mu.Unlock()
	return dst, shared
}

// Acquire counts one more holder of each of ids, which must be held.
func (in *interner) Acquire(ids ...uint32) {
	in.mu.Lock()
	for _, id := range ids {
		if id != 0 {
			in.refs[id]++
		}
	}
	in.mu.Unlock()
}

// Release removes one holder of each of ids, freeing those that have none
// left. The caller promises that it will not use its ids again, and that
// no one reads them through it any more (see interner).
func (in *interner) Release(ids ...uint32) {
	in.mu.Lock()
	for _, id := range ids {
		if id == 0 {
			continue
		}
		if in.refs[id] == 0 {
			in.mu.Unlock()
			panic("queue: interner.Release of an id that is not held")
		}
		if in.refs[id]--; in.refs[id] == 0 {
			in.freed.Add(1)
			c := (*in.dir.Load())[id>>internChunkBits]
			i := id & (1<<internChunkBits - 1)
			delete(in.ids, unsafe.String(c.data[i].Load(), c.size[i].Load()))
			c.data[i].Store(nil)
			c.size[i].Store(0)
			in.free = append(in.free, id)
		}
	}
	in.mu.Unlock()
}

// Lookup returns the id of s if s is interned now. It counts no holder:
// the id may be freed and reused at any time, so the caller must not ask
// for its String (rw2Encoder only compares it with the ids of series it
// holds).
func (in *interner) Lookup(s string) (uint32, bool) {
	if s == "" {
		return 0, true
	}
	in.mu.Lock()
	id, ok := in.ids[s]
	in.mu.Unlock()
	return id, ok
}

// Len returns the number of ids handed out, the empty string's included:
// one more than the highest id. Freed ids are reused, so it stays at the
// most strings ever interned at once.
func (in *interner) Len() int {
	if n := in.n.Load(); n > 0 {
		return int(n)
	}
	return 1
}

// Live returns the number of strings interned now, the empty string's
// included.
func (in *interner) Live() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.ids) + 1
}

// String returns the string of id, which must be held.
func (in *interner) String(id uint32) string {
	if id == 0 {
		return ""
	}
	c := (*in.dir.Load())[id>>internChunkBits]
	i := id & (1<<internChunkBits - 1)
	return unsafe.String(c.data[i].Load(), c.size[i].Load())
}

func (in *interner) internLocked(s string) uint32 {
	if s == "" {
		return 0
	}
	if id, ok := in.ids[s]; ok {
		in.refs[id]++
		return id
	}
	if in.ids == nil {
		in.ids = make(map[string]uint32)
		in.refs = append(in.refs, 0)
		in.n.Store(1)
	}
	var id uint32
	if k := len(in.free); k > 0 {
		id = in.free[k-1]
		in.free = in.free[:k-1]
	} else {
		id = in.n.Load()
		var dir []*internChunk
		if p := in.dir.Load(); p != nil {
			dir = *p
		}
		if c := int(id >> internChunkBits); c == len(dir) {
			grown := make([]*internChunk, c+1, 2*c+1)
			copy(grown, dir)
			grown[c] = new(internChunk)
			in.dir.Store(&grown)
		}
		in.refs = append(in.refs, 0)
		in.n.Store(id + 1)
	}
	s = strings.Clone(s) // s may point into a reused decoding buffer
	c := (*in.dir.Load())[id>>internChunkBits]
	i := id & (1<<internChunkBits - 1)
	c.data[i].Store(unsafe.StringData(s))
	c.size[i].Store(uint32(len(s)))
	in.ids[s] = id
	in.refs[id] = 1
	return id
}
