package queue

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"
)

// This file is the send policy: how one request is sent until the
// endpoint takes it, refuses it for good, or the queue stops: attempts,
// backoff with the endpoint's Retry-After, and what each answer means. It
// owns the protocol the queue speaks (an RW2 queue falls back to RW1 for
// good when its endpoint lacks RW2) and the request size learned from 413
// answers (toolarge.go); shards ask it both before they build.

// sendPolicy sends the requests of one queue; shards and the metadata
// sender share it. Safe for concurrent use.
type sendPolicy struct {
	sender    Sender
	backoffs  Backoff
	proto     *protocolState
	sizes     *sizeLimit // items per request: max_samples_per_send, lowered by 413 answers
	batchSize int        // max_samples_per_send
	// sendSeconds are the accepted attempts' durations, for resharding.
	sendSeconds *meanSeconds
	metrics     *queueMetrics
	log         *slog.Logger
	refusals    refusalLog
	tooLargeLog logLimit
}

// protocolState is the protocol a queue builds its requests in. It
// starts as configured; the send policy switches an RW2 queue to RW1 for
// good when its endpoint says it does not understand RW2. The shards, the
// feeder and the metadata sender read it.
type protocolState struct {
	v   atomic.Int32
	log *slog.Logger
}

func newProtocolState(p Protocol, log *slog.Logger) *protocolState {
	s := &protocolState{log: log}
	s.v.Store(int32(p))
	return s
}

// current returns the protocol requests are built in now.
func (s *protocolState) current() Protocol { return Protocol(s.v.Load()) }

// fallBackToRW1 switches to RW1 for good.
func (s *protocolState) fallBackToRW1() {
	if s.v.Swap(int32(RW1)) == int32(RW2) {
		s.log.Warn("Remote endpoint does not accept Remote-Write 2.0; falling back to 1.0 (prometheus.WriteRequest) for good")
	}
}

// sendOutcome is how a request ended.
type sendOutcome int

const (
	sent        sendOutcome = iota // accepted by the endpoint
	rejected                       // refused for good: dropped and counted
	aborted                        // ctx ended first: stays pending
	unsupported                    // the endpoint does not speak RW2
	expired                        // every item grew too old while retrying
	tooLarge                       // refused as too large (413): see shard.deliver
)

// statusTooLarge is HTTP's 413 Content Too Large.
const statusTooLarge = 413

// attemptResult is how one attempt to send a request ended.
type attemptResult struct {
	written Written
	err     error
}

// attempt sends req once (attempt n, 0 for the first) and records how
// long it took and, when it went through, how many bytes it sent.
func (p *sendPolicy) attempt(ctx context.Context, req *Request, n int) attemptResult {
	start := time.Now()
	written, err := p.sender.Send(ctx, req, n)
	took := time.Since(start).Seconds()
	p.metrics.sentBatchDuration.Observe(took)
	if err == nil {
		p.sendSeconds.observe(took)
		p.metrics.bytesSent.Add(float64(len(req.Body)))
	}
	return attemptResult{written: written, err: err}
}

// send sends req until it is accepted, refused, or ctx ends, and returns
// how it ended and what the endpoint said it wrote (RW2's written-count
// headers) on the last attempt; for tooLarge, the endpoint's answer too.
// first is how the first attempt went when it was made already, nil
// otherwise. Before each retry it calls beforeRetry, which may change req;
// when that returns false nothing is left to send.
func (p *sendPolicy) send(ctx context.Context, req *Request, beforeRetry func() bool, first *attemptResult) (sendOutcome, Written, error) {
	for attempt := 0; ; attempt++ {
		var r attemptResult
		if attempt == 0 && first != nil {
			r = *first
		} else {
			r = p.attempt(ctx, req, attempt)
		}
		written, err := r.written, r.err
		if err == nil {
			return sent, written, nil
		}
		if ctx.Err() != nil {
			return aborted, Written{}, nil
		}
		if errors.Is(err, ErrUnsupportedProtocol) && req.Protocol == RW2 {
			return unsupported, Written{}, nil
		}
		var se *SendError
		if errors.As(err, &se) && se.Status == statusTooLarge {
			return tooLarge, Written{}, err
		}
		if !errors.As(err, &se) || !se.Retryable {
			p.refused(req, err)
			return rejected, written, nil
		}
		p.metrics.retried(req)
		if !sleep(ctx, p.backoffs.Delay(attempt, se.RetryAfter)) {
			return aborted, Written{}, nil
		}
		if !beforeRetry() {
			return expired, Written{}, nil
		}
	}
}

// sleep waits for d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// refused counts a request the endpoint refused for good, by reason, and
// logs it: the first of a burst at once, the rest summed up at most once a
// minute (the counters carry every one).
func (p *sendPolicy) refused(req *Request, err error) {
	reason := "error"
	var se *SendError
	if errors.As(err, &se) && se.Status != 0 {
		reason = strconv.Itoa(se.Status)
	}
	p.metrics.refused.WithLabelValues(reason).Inc()
	if line, ok := p.refusals.add(req); ok {
		p.log.Error("Remote endpoint refused requests for good; their data is dropped (logged at most once a minute)",
			"requests", line.requests, "samples", line.samples, "histograms", line.histograms, "exemplars", line.exemplars, "last_err", err)
	}
}
