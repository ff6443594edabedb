package storage

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"

	"github.com/walship/walship/wal/record"
)

// memSeries is what the DB remembers of one series.
type memSeries struct {
	ref  record.Ref
	lset labels.Labels
	hash uint64
	next *memSeries // next series with the same hash in its stripe (guarded by the stripe lock)

	// lastTs is the newest committed sample timestamp, math.MinInt64 before
	// the first commit. Appends at or before it are out of order.
	lastTs atomic.Int64
	// gone is set when GC removed the series from the table; a commit that
	// still references it keeps its series record in checkpoints.
	gone atomic.Bool
	// logged says a series record for ref is in the log (guarded by DB.mu).
	logged bool
	// meta is the committed metadata, nil if none.
	meta atomic.Pointer[metadata.Metadata]
	// exemplar is the latest appended exemplar, for duplicate detection.
	exemplar atomic.Pointer[exemplar.Exemplar]
}

func newMemSeries(ref record.Ref, lset labels.Labels, hash uint64) *memSeries {
	s := &memSeries{ref: ref, lset: lset, hash: hash}
	s.lastTs.Store(math.MinInt64)
	return s
}

// updateLastTs raises lastTs to t and reports false if t was not newer.
func (s *memSeries) updateLastTs(t int64) bool {
	for {
		cur := s.lastTs.Load()
		if t <= cur {
			return false
		}
		if s.lastTs.CompareAndSwap(cur, t) {
			return true
		}
	}
}

const stripeCount = 1 << 10 // power of two

// seriesTable finds series by labels and by ref. The labels index is
// striped so that appenders on different series rarely share a lock (by
// labels.Hash; collisions chained through memSeries.next and resolved with
// labels.Equal); the ref index is an array read without locks (refIndex).
//
// A seriesTable is safe for concurrent use.
type seriesTable struct {
	nextRef atomic.Uint64
	hashes  [stripeCount]hashStripe
	refs    refIndex
}

type hashStripe struct {
	mu sync.RWMutex
	m  map[uint64]*memSeries
	_  [40]byte // keep stripes on separate cache lines
}

func newSeriesTable() *seriesTable {
	t := &seriesTable{}
	for i := range t.hashes {
		t.hashes[i].m = map[uint64]*memSeries{}
	}
	return t
}

func (t *seriesTable) byRef(ref record.Ref) *memSeries { return t.refs.get(ref) }

func (t *seriesTable) byLabels(hash uint64, lset labels.Labels) *memSeries {
	st := &t.hashes[hash&(stripeCount-1)]
	st.mu.RLock()
	defer st.mu.RUnlock()
	for s := st.m[hash]; s != nil; s = s.next {
		if labels.Equal(s.lset, lset) {
			return s
		}
	}
	return nil
}

// getOrCreate returns the series with lset, creating it with the next
// ref if there is none. created reports whether it did.
func (t *seriesTable) getOrCreate(hash uint64, lset labels.Labels) (s *memSeries, created bool) {
	st := &t.hashes[hash&(stripeCount-1)]
	st.mu.Lock()
	head := st.m[hash]
	for s := head; s != nil; s = s.next {
		if labels.Equal(s.lset, lset) {
			st.mu.Unlock()
			return s, false
		}
	}
	s = newMemSeries(record.Ref(t.nextRef.Add(1)), lset, hash)
	s.next = head
	st.m[hash] = s
	st.mu.Unlock()
	t.addRef(s)
	return s, true
}

// setUnlessPresent adds s (from replay) unless a series with its labels
// exists; it returns the series that is in the table.
func (t *seriesTable) setUnlessPresent(s *memSeries) (*memSeries, bool) {
	st := &t.hashes[s.hash&(stripeCount-1)]
	st.mu.Lock()
	head := st.m[s.hash]
	for o := head; o != nil; o = o.next {
		if labels.Equal(o.lset, s.lset) {
			st.mu.Unlock()
			return o, false
		}
	}
	s.next = head
	st.m[s.hash] = s
	st.mu.Unlock()
	t.addRef(s)
	t.raiseNextRef(s.ref)
	return s, true
}

func (t *seriesTable) addRef(s *memSeries) { t.refs.set(s) }

// raiseNextRef makes sure refs handed out later are above ref.
func (t *seriesTable) raiseNextRef(ref record.Ref) {
	for {
		cur := t.nextRef.Load()
		if uint64(ref) <= cur || t.nextRef.CompareAndSwap(cur, uint64(ref)) {
			return
		}
	}
}

// forEach calls f for every series of the table.
func (t *seriesTable) forEach(f func(*memSeries)) { t.refs.forEach(f) }

// gc removes the series whose newest committed sample is older than mint
// (series never committed included) and returns them, marked gone.
func (t *seriesTable) gc(mint int64) []*memSeries {
	var removed []*memSeries
	for i := range t.hashes {
		st := &t.hashes[i]
		st.mu.Lock()
		for h, head := range st.m {
			var keep *memSeries
			for s := head; s != nil; {
				next := s.next
				if s.lastTs.Load() < mint {
					s.gone.Store(true)
					s.next = nil
					removed = append(removed, s)
				} else {
					s.next = keep
					keep = s
				}
				s = next
			}
			if keep == nil {
				delete(st.m, h)
			} else {
				st.m[h] = keep
			}
		}
		st.mu.Unlock()
	}
	for _, s := range removed {
		t.refs.remove(s, t.nextRef.Load()+1)
	}
	return removed
}
