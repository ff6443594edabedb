package queue

import (
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walship/walship/wal/record"
)

// This file is the queue's accounting: every item that enters the queue
// ends exactly once, as sent, failed (refused for good), or dropped with
// a reason, and the ack tracker learns of it, so that the lowest position
// not yet acknowledged is exact. The shards report here how their items
// ended; the feeder counts what it turns away before it enters (feed.end)
// and the RW2 exemplars it gives up holding (held.go).

// ledger accounts for a queue's items. Safe for concurrent use.
type ledger struct {
	acks        ackTracker
	metrics     *queueMetrics
	age         ageLimit
	log         *slog.Logger
	highestSent atomic.Int64 // newest sample timestamp accepted, ms
	partialLog  logLimit
}

// ageLimit is sample_age_limit with the clock it is read against.
type ageLimit struct {
	limit time.Duration // none when not positive
	now   func() time.Time
}

// oldest returns the oldest timestamp (ms) young enough to send now, or
// math.MinInt64 without a limit.
func (a ageLimit) oldest() int64 {
	if a.limit <= 0 {
		return math.MinInt64
	}
	return a.now().Add(-a.limit).UnixMilli()
}

// finish accounts for a batch that ended: acknowledged or refused for good
// (both release its records' positions), or aborted (they stay pending).
// When the endpoint said what it wrote (RW2), that is what counts as sent
// and the rest as failed, whatever the status: a 2xx that wrote less, or a
// 400 that wrote part of the request (a partial write).
func (l *ledger) finish(batch []item, sum *batchSummary, req *Request, outcome sendOutcome, written Written) {
	split := func(n, wrote int) (ok, failed int) {
		if !written.Known {
			if outcome == sent {
				return n, 0
			}
			return 0, n
		}
		ok = min(max(wrote, 0), n)
		return ok, n - ok
	}
	switch outcome {
	case aborted:
		return
	case sent, rejected:
		if outcome == sent {
			l.noteSent(sum.newest)
		}
		s, sf := split(req.Samples, written.Samples)
		h, hf := split(req.Histograms, written.Histograms)
		e, ef := split(req.Exemplars, written.Exemplars)
		cs := &l.metrics.classes
		cs[classSamples].sent.Add(float64(s))
		cs[classHistograms].sent.Add(float64(h))
		cs[classExemplars].sent.Add(float64(e))
		cs[classSamples].failed.Add(float64(sf))
		cs[classHistograms].failed.Add(float64(hf))
		cs[classExemplars].failed.Add(float64(ef))
		if outcome == sent && sf+hf+ef > 0 {
			l.logPartial(sf, hf, ef)
		}
	}
	for _, r := range sum.runs {
		l.acks.done(r.seq, r.n)
	}
	if !sum.extras {
		return
	}
	for i := range batch {
		if x := batch[i].extra; x != nil {
			for _, a := range x.attached {
				l.acks.done(a.seq, 1)
			}
			batch[i].extra = nil // let go of histogram copies and exemplar labels
		}
	}
}

// dropExpired removes from batch, in place, the items older than
// sample_age_limit, finishing them as dropped, and returns the rest and how
// many it removed.
func (l *ledger) dropExpired(batch []item) ([]item, int) {
	if l.age.limit <= 0 {
		return batch, 0
	}
	oldest := l.age.oldest()
	kept := batch[:0]
	for _, it := range batch {
		if it.t < oldest {
			l.drop(&it, func(d *dropCounters) prometheus.Counter { return d.tooOld })
			continue
		}
		kept = append(kept, it)
	}
	removed := len(batch) - len(kept)
	clear(batch[len(kept):])
	return kept, removed
}

// dropTooLarge finishes items given up for size: each is acknowledged
// (its position may advance) and counted as dropped, with reason
// too_large, as are the exemplars riding it.
func (l *ledger) dropTooLarge(items []item) {
	for i := range items {
		l.drop(&items[i], func(d *dropCounters) prometheus.Counter { return d.tooLarge })
		items[i].extra = nil
	}
}

// drop finishes one item and the exemplars riding it (they cannot go
// without it) as dropped, counted by reason.
func (l *ledger) drop(it *item, reason func(*dropCounters) prometheus.Counter) {
	l.acks.done(it.seq, 1)
	reason(&l.metrics.classes[it.kind.class()].dropped).Inc()
	if it.extra != nil {
		for _, a := range it.extra.attached {
			l.acks.done(a.seq, 1)
			reason(&l.metrics.classes[classExemplars].dropped).Inc()
		}
	}
}

// noteSent raises the highest sent timestamp to newest.
func (l *ledger) noteSent(newest int64) {
	for {
		cur := l.highestSent.Load()
		if newest <= cur {
			return
		}
		if l.highestSent.CompareAndSwap(cur, newest) {
			l.metrics.highestSent.Set(float64(newest) / 1000)
			return
		}
	}
}

// updatePending sets the pending gauges.
func (l *ledger) updatePending() {
	for class, n := range l.acks.pendingByClass() {
		l.metrics.classes[class].pending.Set(float64(n))
	}
}

// logPartial logs a request the endpoint accepted while saying it wrote
// less than it was sent, at most once a minute (the failed counters carry
// the totals).
func (l *ledger) logPartial(samples, histograms, exemplars int) {
	if !l.partialLog.allow() {
		return
	}
	l.log.Error("Remote endpoint accepted a request but says it did not write all of it; the rest is counted as failed",
		"samples", samples, "histograms", histograms, "exemplars", exemplars)
}

// lowest returns the start of the oldest record with items not yet
// finished.
func (l *ledger) lowest() (record.Position, bool) { return l.acks.lowest() }
