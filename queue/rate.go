package queue

import (
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
