package queue

import (
	"sync"

	"github.com/walship/walship/wal/record"
)

// This file tracks acknowledgements: for each WAL record with items in
// the queue, how many are not finished yet, so that the lowest position
// not fully acknowledged is exact.

// ackTracker knows, for every record whose samples are in the queue, how
// many are not yet acknowledged, so that the lowest position not fully
// acknowledged is exact. Records are registered in log order and get
// increasing sequence numbers; shards report acknowledged samples by
// sequence number. It is safe for concurrent use.
type ackTracker struct {
	mu      sync.Mutex
	first   uint64 // sequence number of pending[0]
	pending []pendingRecord
	head    int // pending[:head] are done and about to be dropped
}

type pendingRecord struct {
	start     record.Position
	remaining int
	kind      itemKind // a record holds one kind of item
}

// begin registers a record with n items of kind entering the queue and
// returns its sequence number.
func (a *ackTracker) begin(start record.Position, n int, kind itemKind) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending = append(a.pending, pendingRecord{start: start, remaining: n, kind: kind})
	return a.first + uint64(len(a.pending)-1)
}

// done marks n samples of record seq as finished: acknowledged, or dropped
// for good (a rejected batch, a sample too old).
func (a *ackTracker) done(seq uint64, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := int(seq - a.first)
	if i < 0 || i >= len(a.pending) {
		return
	}
	a.pending[i].remaining -= n
	for a.head < len(a.pending) && a.pending[a.head].remaining <= 0 {
		a.head++
	}
	// Drop finished records from the front once they are half the slice.
	if a.head > 0 && a.head >= len(a.pending)/2 {
		a.first += uint64(a.head)
		a.pending = append(a.pending[:0], a.pending[a.head:]...)
		a.head = 0
	}
}

// lowest returns the start of the earliest record with samples not yet
// finished, and false when there is none.
func (a *ackTracker) lowest() (record.Position, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.head < len(a.pending) {
		return a.pending[a.head].start, true
	}
	return record.Position{}, false
}

// pendingByClass returns how many items of each class (samples,
// histograms, exemplars) are not finished.
func (a *ackTracker) pendingByClass() (n [numClasses]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.pending[a.head:] {
		n[p.kind.class()] += max(p.remaining, 0)
	}
	return n
}

// pendingItems returns how many items are not finished.
func (a *ackTracker) pendingItems() int {
	n := a.pendingByClass()
	return n[classSamples] + n[classHistograms] + n[classExemplars]
}
