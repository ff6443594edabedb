package remote

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/walship/walship/queue"
)

// lane is the part of a pipeline that ships to the members whose requests
// are the same bytes (one requestKey): one queue per attempt, sending
// through a fanout when the lane has more than one member. A pipeline with
// several lanes feeds their queues from its one watcher through a tee.
type lane struct {
	members []*endpoint // at the start; the fanout knows who is still in
	fan     *fanout     // nil for one member
	index   uint8       // in its pipeline: its queues' Options.Lane

	q           atomic.Pointer[queue.Manager] // the current attempt's
	highestPrev atomic.Int64                  // highest sent by earlier attempts' queues

	// leftWith are the members the lane left its pipeline with (see
	// pipeline.leaveLane), nil while it is in; guarded by the pipeline's mu.
	leftWith []*endpoint

	// The current attempt's queue, run by the pipeline's goroutine.
	stopQueue context.CancelFunc
	queueDone chan error
}

// lanesOf sorts members (in configuration order) into lanes by their
// request keys.
func lanesOf(members []*endpoint) []*lane {
	var lanes []*lane
next:
	for _, ep := range members {
		for _, l := range lanes {
			if l.members[0].rkey == ep.rkey {
				l.members = append(l.members, ep)
				continue next
			}
		}
		lanes = append(lanes, &lane{members: []*endpoint{ep}, index: uint8(len(lanes))}) // at most maxMembers
	}
	return lanes
}

// relabelRules counts the lane's write_relabel_configs.
func (l *lane) relabelRules() int { return len(l.members[0].cfg.WriteRelabelConfigs) }

// shipTo returns the members still in the lane.
func (l *lane) shipTo() []*endpoint {
	if l.fan != nil {
		return l.fan.current()
	}
	return l.members
}

// newQueue builds the queue for the members still in the lane.
func (l *lane) newQueue(env *shipping) (*queue.Manager, error) {
	members, sender := l.shipTo(), queue.Sender(l.members[0].sender)
	if l.fan != nil {
		sender = l.fan
	}
	also := make([]queue.Target, 0, len(members)-1)
	for _, ep := range members[1:] {
		also = append(also, ep.target())
	}
	cfg := members[0].cfg
	q, err := queue.New(queue.Options{
		Name:           members[0].name,
		URL:            members[0].url,
		Also:           also,
		Config:         cfg.QueueConfig,
		Metadata:       cfg.MetadataConfig,
		Protocol:       members[0].proto,
		ExternalLabels: env.external,
		RelabelConfigs: cfg.WriteRelabelConfigs,
		Sender:         sender,
		Metrics:        env.queueM,
		Logger:         env.log, // the queue adds remote_name and url
		Labels:         env.labels,
		Lane:           l.index,
	})
	if err == nil {
		l.q.Store(q)
	}
	return q, err
}

// runQueue starts the current queue; stop ends it.
func (l *lane) runQueue() {
	ctx, cancel := context.WithCancel(context.Background())
	l.stopQueue, l.queueDone = cancel, make(chan error, 1)
	q := l.q.Load()
	go func() { l.queueDone <- q.Run(ctx) }()
}

// stop ends the current queue's Run and waits for it.
func (l *lane) stop(log *slog.Logger) {
	l.stopQueue()
	if err := <-l.queueDone; err != nil {
		log.Error("Remote write queue stopped with an error", "err", err)
	}
}

// endAttempt keeps what the attempt's queue sent for highestSent, and
// discards the queue and lets go of it: the endpoints point at the lane
// until a new one ships to them, and what the queue still holds (unsent
// items after a flush cut short) is garbage from then on.
func (l *lane) endAttempt() {
	if q := l.q.Swap(nil); q != nil {
		l.highestPrev.Store(max(l.highestPrev.Load(), q.HighestSentTimestamp()))
		q.Discard()
	}
}

// highestSent is the newest sample timestamp the lane's queues sent.
func (l *lane) highestSent() int64 {
	ts := l.highestPrev.Load()
	if q := l.q.Load(); q != nil {
		ts = max(ts, q.HighestSentTimestamp())
	}
	return ts
}
