package queue

import (
	"sync"
	"sync/atomic"
	"time"
)

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

// meanSeconds averages durations observed from any goroutine over an
// interval; take returns the mean of the interval (0 when nothing was
// observed) and starts the next.
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

func (e *meanSeconds) take() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.count == 0 {
		return 0
	}
	mean := e.sum / float64(e.count)
	e.sum, e.count = 0, 0
	return mean
}
