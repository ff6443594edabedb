package queue

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// This file is what a queue does when the endpoint refuses a request as
// too large (413): the rest of the batch goes in smaller parts, a bounded
// number of times, and the queue learns a smaller request size for the
// batches that follow (sizeLimit), growing back slowly while requests are
// accepted, so that an endpoint with a real size limit gets requests that
// fit, and one that refuses everything never gets a storm.

// maxHalvings bounds how often one batch's request size is halved after
// 413 answers: a batch costs at most maxHalvings+1 refused requests, then
// the rest of it is dropped (counted with reason too_large). Two halvings
// reach a quarter of the size within a batch; the learned limit carries
// the search on into the next batch instead of into more requests now.
const maxHalvings = 2

// minSplitBody is the smallest compressed body worth splitting after a
// 413: no real body-size limit is this small, so a refusal of a smaller
// request says that the endpoint refuses everything, and the batch is
// dropped at once, as upstream drops any batch refused with 413.
const minSplitBody = 1 << 10

// Growing back: after limitGrowAfter requests in a row accepted at (at
// least half) the learned size, it grows by a quarter (at least one item),
// up to max_samples_per_send. Back from half the size takes about 30
// accepted requests; a size that overshoots the endpoint's limit again
// costs one refusal (and the two parts sent instead), about one request in
// twenty.
const limitGrowAfter = 10

// sizeLimit is the most items a queue puts in one request: the
// configured max_samples_per_send, lowered by 413 answers and grown back
// while requests are accepted (additive increase, multiplicative
// decrease). Its value is exported as
// prometheus_remote_storage_max_samples_per_send. Safe for concurrent use.
type sizeLimit struct {
	max   int
	gauge prometheus.Gauge

	mu     sync.Mutex
	cur    int
	streak int // requests accepted in a row at (at least half) cur
}

func newSizeLimit(maxItems int, gauge prometheus.Gauge) *sizeLimit {
	gauge.Set(float64(maxItems))
	return &sizeLimit{max: maxItems, cur: maxItems, gauge: gauge}
}

// current returns the most items to put in a request now.
func (l *sizeLimit) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// refused notes that a request of n items was refused as too large: the
// limit becomes at most half of n. It returns the new limit and whether
// it changed.
func (l *sizeLimit) refused(n int) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streak = 0
	lower := max(1, n/2)
	if lower >= l.cur {
		return l.cur, false
	}
	l.cur = lower
	l.gauge.Set(float64(lower))
	return lower, true
}

// accepted notes that a request of n items was accepted. It returns the
// limit and whether it grew back to max_samples_per_send with this one.
func (l *sizeLimit) accepted(n int) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == l.max || 2*n < l.cur {
		return l.cur, false // a small request says nothing of the limit
	}
	if l.streak++; l.streak < limitGrowAfter {
		return l.cur, false
	}
	l.streak = 0
	l.cur = min(l.max, l.cur+max(1, l.cur/4))
	l.gauge.Set(float64(l.cur))
	return l.cur, l.cur == l.max
}

// splittable reports whether a request of these items, refused as too
// large, may be sent again in smaller parts.
func splittable(items []item, req *Request) bool {
	return len(items) > 1 && len(req.Body) >= minSplitBody
}

// logTooLarge logs a request refused as too large and what the queue does
// about it, at most once a minute unless the request size was lowered,
// which is always logged.
func (p *sendPolicy) logTooLarge(req *Request, limit int, lowered, dropped bool, err error) {
	if allowed := p.tooLargeLog.allow(); !lowered && !allowed {
		return
	}
	attrs := []any{"samples", req.Samples, "histograms", req.Histograms, "exemplars", req.Exemplars,
		"bytes", len(req.Body), "max_samples_per_send", p.batchSize, "err", err}
	switch {
	case dropped:
		p.log.Error("Remote endpoint refused a request as too large (413), and sending less did not help; the rest of its batch is dropped, "+
			`counted in prometheus_remote_storage_samples_dropped_total{reason="too_large"}`, attrs...)
	case lowered:
		p.log.Warn("Remote endpoint refused a request as too large (413); sending smaller requests from now on, growing back while they are accepted. "+
			"Lower queue_config.max_samples_per_send (or raise the endpoint's limit) to spare the refused requests",
			append(attrs, "samples_per_request", limit)...)
	default:
		p.log.Warn("Remote endpoint refused a request as too large (413); sending it in smaller parts", attrs...)
	}
}
