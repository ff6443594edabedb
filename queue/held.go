package queue

import (
	"sync"
	"sync/atomic"
	"time"
)

// This file holds RW2 exemplars that missed their series' sample until
// the series' next sample or histogram, for at most maxExemplarHold.

// heldExemplars are RW2 exemplars that found no sample or histogram of
// their series waiting when they were queued: a WAL logs a commit's
// samples, then its exemplars, and a shard may cut the batch holding the
// sample in between. RW2 cannot send an exemplar alone, so each waits here
// for its series' next sample or histogram (the next scrape) and travels
// with it (feed.slot). One still waiting after maxExemplarHold (its series
// stopped) is dropped and counted. A held exemplar stays pending, also
// through a flush, so the WAL position it came from is not saved past it:
// after a restart it is read again and rides a sample then.
//
// The feeding goroutine holds, takes and sweeps; DropHeld runs on the
// caller's goroutine once feeding has stopped, so mu guards the map.
type heldExemplars struct {
	mu       sync.Mutex
	bySeries map[*encodedSeries]*heldFor
	n        atomic.Int64 // exemplars held, read without mu
	swept    time.Time    // when expired ones were last looked for (the feeder's)
}

// heldFor are the exemplars of one series waiting for its next sample.
type heldFor struct {
	since     time.Time // when the first of them was held
	exemplars []attachedExemplar
}

// maxExemplarHold is how long an exemplar waits for its series' next
// sample or histogram: Prometheus's staleness period, beyond any common
// scrape interval. heldSweepEvery is how often the feeder looks for
// exemplars that waited longer.
const (
	maxExemplarHold = 5 * time.Minute
	heldSweepEvery  = 10 * time.Second
)

func (h *heldExemplars) hold(d *encodedSeries, e attachedExemplar, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bySeries == nil {
		h.bySeries = map[*encodedSeries]*heldFor{}
	}
	w := h.bySeries[d]
	if w == nil {
		w = &heldFor{since: now}
		h.bySeries[d] = w
	}
	w.exemplars = append(w.exemplars, e)
	h.n.Add(1)
}

// take removes and returns the exemplars held for d (nil when none are).
func (h *heldExemplars) take(d *encodedSeries) []attachedExemplar {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.bySeries[d]
	if w == nil {
		return nil
	}
	delete(h.bySeries, d)
	h.n.Add(-int64(len(w.exemplars)))
	return w.exemplars
}

// dropOlder removes the exemplars of every series whose first was held
// before cutoff and returns their ack tracker records.
func (h *heldExemplars) dropOlder(cutoff time.Time) []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var seqs []uint64
	for d, w := range h.bySeries {
		if !w.since.Before(cutoff) {
			continue
		}
		for _, e := range w.exemplars {
			seqs = append(seqs, e.seq)
		}
		h.n.Add(-int64(len(w.exemplars)))
		delete(h.bySeries, d)
	}
	return seqs
}

// sweepHeld drops the exemplars that waited longer than maxExemplarHold,
// at most every heldSweepEvery; the feeding goroutine calls it when some
// are held.
func (in *intake) sweepHeld(now time.Time) {
	if now.Sub(in.held.swept) < heldSweepEvery {
		return
	}
	in.held.swept = now
	in.dropHeld(now.Add(-maxExemplarHold))
}

// dropHeld drops the exemplars held since before cutoff, finishing them
// as dropped for want of a sample in their request, and logs it at most
// once a minute (the counter carries the totals).
func (in *intake) dropHeld(cutoff time.Time) {
	seqs := in.held.dropOlder(cutoff)
	for _, seq := range seqs {
		in.ledger.acks.done(seq, 1)
	}
	if len(seqs) == 0 {
		return
	}
	in.metrics.exemplarsNoSample.Add(float64(len(seqs)))
	if in.loneLog.allow() {
		in.log.Warn("Dropped Remote-Write 2.0 exemplars whose series had no new sample or histogram for "+maxExemplarHold.String()+
			" to travel with, since RW2 forbids series with exemplars only; "+
			`prometheus_remote_storage_exemplars_dropped_total{reason="no_sample_in_request"} counts them all`, "exemplars", len(seqs))
	}
}
