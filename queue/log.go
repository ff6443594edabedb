package queue

import (
	"sync"
	"sync/atomic"
	"time"
)

// This file keeps repeated log lines down: a queue whose endpoint refuses
// everything, or drops exemplars every scrape, logs a line a minute, and
// its counters carry the totals.

// logInterval is the least time between two lines of a repeated message.
const logInterval = time.Minute

// logLimit lets a repeated message through at most once per logInterval.
type logLimit struct{ last atomic.Int64 } // Unix ns of the last line

func (l *logLimit) allow() bool {
	now, last := time.Now().UnixNano(), l.last.Load()
	return now-last >= int64(logInterval) && l.last.CompareAndSwap(last, now)
}

// refusalLog sums up refused requests into one log line a minute.
type refusalLog struct {
	mu   sync.Mutex
	last time.Time  // when a line was last written
	sum  refusalSum // refused since then, not logged
}

// refusalSum is what refused requests carried.
type refusalSum struct {
	requests, samples, histograms, exemplars int
}

// add counts a refused request and returns the line to log, with ok,
// when a minute passed since the last.
func (r *refusalLog) add(req *Request) (line refusalSum, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.requests++
	r.sum.samples += req.Samples
	r.sum.histograms += req.Histograms
	r.sum.exemplars += req.Exemplars
	now := time.Now()
	if now.Sub(r.last) < logInterval {
		return refusalSum{}, false
	}
	line, r.sum, r.last = r.sum, refusalSum{}, now
	return line, true
}
