package queue

import (
	"sync"
	"sync/atomic"
	"time"
)

// This file measures load for the resharding rule: the rate items come
// in, how long sends take, and how long the feeder waited for room.

// ewmaRate is an exponentially weighted moving average of a per-second
// rate: events are added from any goroutine, and tick, called once per
// interval by one owner, folds them into the rate.
type ewmaRate struct {
	alpha    float64
	interval time.Duration
	pending  atomic.Int64
	rate     float64 // owned by the caller of tick
	started  bool
}

func newEWMARate(alpha float64, interval time.Duration) *ewmaRate {
	return &ewmaRate{alpha: alpha, interval: interval}
}

// add counts n events.
func (r *ewmaRate) add(n int64) { r.pending.Add(n) }

// tick folds the events of the last interval into the rate and returns it.
// The first interval sets the rate outright.
func (r *ewmaRate) tick() float64 {
	current := float64(r.pending.Swap(0)) / r.interval.Seconds()
	if r.started {
		r.rate += r.alpha * (current - r.rate)
	} else {
		r.rate, r.started = current, true
	}
	return r.rate
}

// meanSeconds sums durations observed from any goroutine over an
// interval; take returns their mean (0 when nothing was observed) and
// total, and starts the next.
type meanSeconds struct {
	mu    sync.Mutex
	sum   float64
	count int
}

func (e *meanSeconds) observe(seconds float64) {
	e.mu.Lock()
	e.sum += seconds
	e.count++
	e.mu.Unlock()
}

func (e *meanSeconds) take() (mean, total float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.count > 0 {
		mean, total = e.sum/float64(e.count), e.sum
	}
	e.sum, e.count = 0, 0
	return mean, total
}

// waitClock measures how long the feeder spends turned away by full
// shards: wait starts the clock when an append takes less than it was
// given, resume stops it at the next append, and take returns the time
// waited since the last take (counting a wait still running). Each is
// one atomic load when nothing waits, so appends can call them freely.
type waitClock struct {
	since atomic.Int64 // unix nanoseconds the current wait started; 0 when none
	total atomic.Int64 // nanoseconds waited in finished waits
}

func (w *waitClock) wait(now time.Time) { w.since.CompareAndSwap(0, now.UnixNano()) }

func (w *waitClock) resume(now func() time.Time) {
	if since := w.since.Load(); since != 0 && w.since.CompareAndSwap(since, 0) {
		w.total.Add(now().UnixNano() - since)
	}
}

func (w *waitClock) take(now time.Time) time.Duration {
	d := w.total.Swap(0)
	if since := w.since.Load(); since != 0 && w.since.CompareAndSwap(since, now.UnixNano()) {
		d += now.UnixNano() - since
	}
	return time.Duration(d)
}

// loadSignals are what the resharding rule measures of a queue, written
// where they happen (the feeder: in, waited, newestQueued; the send
// policy: sendSeconds) and read by the shard planner every interval.
type loadSignals struct {
	in           *ewmaRate    // items queued per second
	sendSeconds  meanSeconds  // how long accepted attempts took
	waited       waitClock    // the feeder turned away by full shards
	newestQueued atomic.Int64 // newest timestamp queued, ms
}
