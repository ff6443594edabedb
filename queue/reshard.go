package queue

import (
	"math"
	"slices"
	"time"
)

// This file decides the number of shards: the rule (a pure function of
// what was measured) and the planner that asks it every interval.

// shardInputs are what the resharding rule decides from, measured over the
// last update interval.
type shardInputs struct {
	// Current is the number of shards running; Min and Max bound the answer
	// (min_shards, max_shards).
	Current, Min, Max int
	// InRate is the rate samples enter the queue, per second.
	InRate float64
	// Pending is the number of samples waiting to be sent.
	Pending int
	// SendSeconds is the mean duration of a successful send; zero when no
	// send succeeded during the interval.
	SendSeconds float64
	// BatchSize is max_samples_per_send.
	BatchSize int
	// Busy is the share of the interval the shards spent in successful
	// sends, from 0 (idle) to 1 (every shard sending all the time).
	Busy float64
	// Blocked is the share of the interval the input spent waiting for
	// room in full shards, from 0 to 1: near 1 it waits behind them all
	// the time (a backlog), a scrape's burst makes it small.
	Blocked float64
	// Behind is the age in seconds of the newest sample taken in: how far
	// behind the writer the reading is (zero or less when it keeps up).
	Behind float64
	// Floor is the most shards the rule asked for over the last
	// stabilisation window (the caller's memory, see shardHistory): a
	// scale-down stops there, so that a load arriving in bursts further
	// apart than the interval keeps the count its bursts need instead of
	// following them up and down.
	Floor int
}

// Utilisation bounds of the rule: shards are added when the load would
// keep them busier than scaleUpAt, and removed only when the remaining
// ones would still be busy less than scaleDownTo. The band between the
// two is what keeps the count from flapping between two values.
const (
	scaleUpAt   = 0.8
	scaleDownTo = 0.5
	// downStep is the least share of the shards a scale-down removes:
	// every reshard drains all shards, so a falling average is followed
	// in a few larger steps rather than one shard per interval.
	downStep = 0.3
	// catchUpSeconds is how fast a backlog should be worked off on top of
	// the incoming rate.
	catchUpSeconds = 30
)

// desiredShards returns how many shards the queue should run.
//
// A shard that is always sending moves BatchSize samples per SendSeconds.
// The queue must move InRate plus Pending/catchUpSeconds. It scales up to
// the count that keeps utilisation at or below scaleUpAt, and down only to
// the count that keeps it at or below scaleDownTo, and only when that
// removes at least downStep of them.
//
// When the shards hold back a backlog (the input Blocked most of the
// interval, the shards at least scaleDownTo Busy, the samples read more
// than catchUpSeconds old) the incoming rate only says what the shards
// managed, and its moving average trails it: after an outage the writer
// is far ahead. The queue then needs at least what the shards moved this
// interval times Behind/catchUpSeconds, so a long outage scales up in one
// step instead of by a quarter per interval. Younger samples (a scrape's
// burst still being sent) are left to the moving average.
//
// When no send succeeded while samples wait (an outage) nothing is
// measured and the count stays: more shards cannot help an endpoint that
// is down. With nothing sent and nothing waiting, nothing came in: the
// queue is idle and goes down to Min (its incoming rate is a moving
// average that only tends to zero). No scale-down goes below Floor.
func desiredShards(in shardInputs) int {
	clamp := func(n int) int { return max(in.Min, min(in.Max, n)) }
	lowest := max(min(in.Floor, in.Current), 1) // how far down it may go
	if in.SendSeconds <= 0 || in.BatchSize <= 0 {
		if in.Pending == 0 {
			return clamp(lowest)
		}
		return clamp(in.Current)
	}
	perShard := float64(in.BatchSize) / in.SendSeconds
	need := in.InRate + float64(in.Pending)/catchUpSeconds
	if in.Blocked >= 0.5 && in.Busy >= scaleDownTo && in.Behind > catchUpSeconds {
		moved := min(in.Busy, 1) * float64(in.Current) * perShard
		need = max(need, moved*in.Behind/catchUpSeconds)
	}
	up := int(math.Ceil(need / (perShard * scaleUpAt)))
	down := int(math.Ceil(need / (perShard * scaleDownTo)))
	switch {
	case up > in.Current:
		return clamp(up)
	case float64(down) <= (1-downStep)*float64(in.Current):
		return clamp(max(down, lowest))
	}
	return clamp(in.Current)
}

// stabilisationWindow is how long a count the rule asked for holds off
// scale-downs below it (shardInputs.Floor): long enough to span the
// scrape intervals Prometheus is run with, so that bursts written every
// minute do not make the count swing with them.
const stabilisationWindow = 5 * time.Minute

// shardHistory remembers the counts the rule asked for over the last
// intervals (a ring of them); floor is their maximum.
type shardHistory struct {
	asked []int
	next  int
}

func newShardHistory(intervals int) *shardHistory {
	return &shardHistory{asked: make([]int, max(intervals, 1))}
}

func (h *shardHistory) add(n int) {
	h.asked[h.next] = n
	h.next = (h.next + 1) % len(h.asked)
}

func (h *shardHistory) floor() int { return slices.Max(h.asked) }

// shardUpdateInterval is how often the shard count is reconsidered.
const shardUpdateInterval = 10 * time.Second

// shardPlanner asks the rule for a shard count every interval, from what
// the queue measured since the last time (loadSignals) and what the rule
// asked for over the stabilisation window. Run's goroutine owns it.
type shardPlanner struct {
	min, max, batchSize int
	signals             *loadSignals
	history             *shardHistory
	every               time.Duration // how often the count is reconsidered
	last                time.Time     // when it last was
	now                 func() time.Time
}

func newShardPlanner(minShards, maxShards, batchSize int, signals *loadSignals, now func() time.Time) *shardPlanner {
	return &shardPlanner{
		min: minShards, max: maxShards, batchSize: batchSize,
		signals: signals,
		history: newShardHistory(int(stabilisationWindow / shardUpdateInterval)),
		every:   shardUpdateInterval,
		now:     now,
	}
}

// start begins the first interval.
func (p *shardPlanner) start() { p.last = p.now() }

// decide measures the interval since the last call, with current shards
// running and pending items in them, and asks the rule; it returns the
// answer and what the rule was asked with.
func (p *shardPlanner) decide(current, pending int) (int, shardInputs) {
	now := p.now()
	elapsed := now.Sub(p.last).Seconds()
	p.last = now
	s := p.signals
	mean, total := s.sendSeconds.take()
	busy, blocked := 0.0, 0.0
	if elapsed > 0 && current > 0 {
		busy = total / (elapsed * float64(current))
		blocked = s.waited.take(now).Seconds() / elapsed
	}
	behind := 0.0
	if newest := s.newestQueued.Load(); newest > 0 {
		behind = now.Sub(time.UnixMilli(newest)).Seconds()
	}
	in := shardInputs{
		Current:     current,
		Min:         p.min,
		Max:         p.max,
		InRate:      s.in.tick(),
		Pending:     pending,
		SendSeconds: mean,
		BatchSize:   p.batchSize,
		Busy:        busy,
		Blocked:     blocked,
		Behind:      behind,
	}
	// The history keeps what each interval alone asked for; the answer
	// does not go below the most asked for over the window.
	asked := desiredShards(in)
	in.Floor = p.history.floor()
	p.history.add(asked)
	return desiredShards(in), in
}
