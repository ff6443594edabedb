package storage

import (
	"sync"
	"sync/atomic"

	"github.com/walship/walship/wal/record"
)

// refPageBits sets how many refs a page of the refIndex holds (4096: 32 KiB).
const refPageBits = 12

const refPageSize = 1 << refPageBits

// refIndex finds series by ref. Refs are handed out in order, so it is an
// array in pages, read without locks: the page directory and the slots are
// atomic pointers, and the directory is replaced, not changed, when it
// grows. A page whose series are all gone and whose refs were all handed
// out is freed, so refs that churn do not hold memory.
//
// A lookup is one page and one slot, and a series costs one 8-byte slot.
type refIndex struct {
	mu  sync.Mutex // makes and frees pages, grows the directory
	dir atomic.Pointer[[]atomic.Pointer[refPage]]
}

type refPage struct {
	slots [refPageSize]atomic.Pointer[memSeries]
	live  atomic.Int64 // slots holding a series, and sets under way
	freed atomic.Bool  // no longer in the directory: sets go to a new page
}

// get returns the series with ref, nil if none.
func (x *refIndex) get(ref record.Ref) *memSeries {
	if p := x.page(uint64(ref) >> refPageBits); p != nil {
		return p.slots[ref&(refPageSize-1)].Load()
	}
	return nil
}

// page returns the page with index i, nil if none.
func (x *refIndex) page(i uint64) *refPage {
	dir := x.dir.Load()
	if dir == nil || i >= uint64(len(*dir)) {
		return nil
	}
	return (*dir)[i].Load()
}

// set makes s the series with s.ref.
func (x *refIndex) set(s *memSeries) {
	i, slot := uint64(s.ref)>>refPageBits, s.ref&(refPageSize-1)
	for {
		p := x.page(i)
		if p == nil {
			p = x.makePage(i)
		}
		p.live.Add(1)
		if old := p.slots[slot].Swap(s); old != nil {
			p.live.Add(-1) // replaced, not added
		}
		if !p.freed.Load() {
			return
		}
		// Freed while s went in (it held no series a moment ago): again,
		// into the page that replaces it.
	}
}

// makePage returns page i, made if there is none.
func (x *refIndex) makePage(i uint64) *refPage {
	x.mu.Lock()
	defer x.mu.Unlock()
	dir := x.dir.Load()
	if dir == nil || i >= uint64(len(*dir)) {
		grown := make([]atomic.Pointer[refPage], max(i+1, 2*uint64(len(ptrs(dir)))))
		for j := range ptrs(dir) {
			grown[j].Store((*dir)[j].Load())
		}
		x.dir.Store(&grown)
		dir = &grown
	}
	if p := (*dir)[i].Load(); p != nil {
		return p
	}
	p := &refPage{}
	(*dir)[i].Store(p)
	return p
}

func ptrs(dir *[]atomic.Pointer[refPage]) []atomic.Pointer[refPage] {
	if dir == nil {
		return nil
	}
	return *dir
}

// remove takes s out, unless another series has its ref now. next is the
// next ref to be handed out: a page is freed only once all its refs were.
func (x *refIndex) remove(s *memSeries, next uint64) {
	i := uint64(s.ref) >> refPageBits
	p := x.page(i)
	if p == nil || !p.slots[s.ref&(refPageSize-1)].CompareAndSwap(s, nil) {
		return
	}
	if p.live.Add(-1) > 0 || (i+1)<<refPageBits > next {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.page(i) != p {
		return
	}
	// Freed first, live read after: a set that added to live before this
	// read keeps the page, one that adds after sees freed and goes again.
	p.freed.Store(true)
	if p.live.Load() != 0 {
		p.freed.Store(false)
		return
	}
	(*x.dir.Load())[i].Store(nil)
}

// forEach calls f for every series in the index.
func (x *refIndex) forEach(f func(*memSeries)) {
	for i := range ptrs(x.dir.Load()) {
		p := x.page(uint64(i))
		if p == nil {
			continue
		}
		for j := range p.slots {
			if s := p.slots[j].Load(); s != nil {
				f(s)
			}
		}
	}
}
