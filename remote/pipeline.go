package remote

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// watcherRetryInterval is how long a pipeline waits before it reads the
// WAL again after its watcher stopped on an error (the directory vanished,
// a segment could not be opened).
const watcherRetryInterval = 5 * time.Second

// shipping is what every pipeline of a Storage uses alike.
type shipping struct {
	opts     Options
	log      *slog.Logger
	queueM   *queue.Metrics
	watcherM *watcher.Metrics
	labels   *queue.Labels // the WAL's labels, interned once for all queues
	external labels.Labels
}

// pipeline is one watcher of the WAL feeding one queue, which ships to one
// endpoint or, through a fanout, to a group of them. A member that leaves
// the group gets a pipeline of its own, owned by this one (children), that
// starts at the group's last saved position. run is its goroutine (besides
// the watcher's run, which it calls, and the queue's); stop ends it.
type pipeline struct {
	env       *shipping
	members   []*endpoint // at the start; the fanout knows who is still in
	fan       *fanout     // nil for one endpoint
	positions *groupPositions
	start     watcher.Start
	log       *slog.Logger

	// catchUp is where the group starts when some members were saved
	// before the others (behind): they catch up to it first.
	catchUp *record.Position
	behind  []*endpoint
	// stopAt ends a member's catching up: its pipeline stops there, and
	// caughtUp says whether everything before it was acknowledged.
	stopAt   *record.Position
	caughtUp atomic.Bool

	q           atomic.Pointer[queue.Manager] // the current attempt's
	highestPrev atomic.Int64                  // highest sent by earlier attempts' queues

	mu       sync.Mutex
	w        *watcher.Watcher // the current one, for Notify
	children []*pipeline
	ended    bool // run is past its loop: no more children

	ctx      context.Context
	cancel   context.CancelFunc
	finished chan struct{} // closed when run returns
}

// newPipeline returns a pipeline shipping to members, not started. from,
// when set, is where it starts reading (a member that left a group).
func newPipeline(env *shipping, members []*endpoint, from *record.Position) *pipeline {
	p := &pipeline{
		env:       env,
		members:   members,
		positions: &groupPositions{members: append([]*endpoint(nil), members...), from: from},
		start:     env.opts.Start,
		log:       env.log.With("remote_name", members[0].name, "url", members[0].url),
		finished:  make(chan struct{}),
	}
	if from != nil {
		p.start = watcher.FromPosition
	}
	if len(members) > 1 {
		p.fan = newFanout(members, env.opts.GroupLag, queue.NewBackoff(members[0].cfg.QueueConfig, nil), p.leave)
	}
	for _, ep := range members {
		ep.pipe.Store(p)
	}
	return p
}

// startUnder runs the pipeline until parent ends or stop is called.
func (p *pipeline) startUnder(parent context.Context) {
	p.ctx, p.cancel = context.WithCancel(parent)
	go p.run()
}

// shipTo returns the members still in the pipeline.
func (p *pipeline) shipTo() []*endpoint {
	if p.fan != nil {
		return p.fan.current()
	}
	return p.members
}

// newQueue builds the queue for the members still in the pipeline.
func (p *pipeline) newQueue() (*queue.Manager, error) {
	members, sender := p.shipTo(), queue.Sender(p.members[0].sender)
	if p.fan != nil {
		sender = p.fan
	}
	also := make([]queue.Target, 0, len(members)-1)
	for _, ep := range members[1:] {
		also = append(also, ep.target())
	}
	cfg := members[0].cfg
	return queue.New(queue.Options{
		Name:           members[0].name,
		URL:            members[0].url,
		Also:           also,
		Config:         cfg.QueueConfig,
		Metadata:       cfg.MetadataConfig,
		Protocol:       members[0].proto,
		ExternalLabels: p.env.external,
		RelabelConfigs: cfg.WriteRelabelConfigs,
		Sender:         sender,
		Metrics:        p.env.queueM,
		Logger:         p.env.log, // the queue adds remote_name and url
		Labels:         p.env.labels,
	})
}

// run ships until ctx ends (or, with StopAtEnd, until the whole log was
// shipped). When reading the WAL fails, the attempt ends as a stop does
// and a new one starts from the saved position after a pause. It returns
// once the pipelines of members that left have returned too.
func (p *pipeline) run() {
	defer close(p.finished)
	defer p.waitChildren()
	p.catchUpBehind()
	for {
		q, err := p.newQueue()
		if err != nil {
			p.log.Error("Remote write endpoint stopped", "err", err)
			return
		}
		p.q.Store(q)
		err = p.attempt(p.ctx, q)
		p.highestPrev.Store(max(p.highestPrev.Load(), q.HighestSentTimestamp()))
		if err == nil || errors.Is(err, watcher.ErrReachedEnd) || p.ctx.Err() != nil {
			return
		}
		p.log.Error("Reading the WAL failed; retrying from the saved position", "err", err, "retry_in", watcherRetryInterval)
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(watcherRetryInterval):
		}
	}
}

func (p *pipeline) waitChildren() {
	p.mu.Lock()
	p.ended = true
	children := p.children
	p.mu.Unlock()
	for _, c := range children {
		<-c.finished
	}
}

// attempt runs q fed by a new watcher until ctx ends, the log ends
// (StopAtEnd) or reading fails; then it flushes q, saves the position the
// flush reached and stops q. The flush is bounded by the flush deadline;
// after the end of the log it waits for everything to be acknowledged,
// and for at most the flush deadline more once ctx ends.
func (p *pipeline) attempt(ctx context.Context, q *queue.Manager) error {
	opts := p.env.opts
	lead := p.shipTo()[0]
	w, err := watcher.New(q, watcher.Options{
		Dir:            opts.WALDir,
		Name:           lead.name,
		FS:             opts.FS,
		Start:          p.start,
		Positions:      p.positions,
		SendExemplars:  lead.cfg.SendExemplars,
		SendHistograms: lead.cfg.SendNativeHistograms,
		Metrics:        p.env.watcherM,
		Logger:         p.log,
		StopAtEnd:      opts.StopAtEnd,
		StopAt:         p.stopAt,
		Backfill:       opts.StopAtEnd,
		Committed:      opts.Committed,
	})
	if err != nil {
		return err
	}
	qctx, stopQueue := context.WithCancel(context.Background())
	queueDone := make(chan error, 1)
	go func() { queueDone <- q.Run(qctx) }()
	p.mu.Lock()
	p.w = w
	p.mu.Unlock()

	runErr := w.Run(ctx)

	reachedEnd := errors.Is(runErr, watcher.ErrReachedEnd)
	deadline := opts.FlushDeadline
	if p.stopAt != nil {
		deadline = 0 // stopped catching up: its group goes on without it
	}
	flushCtx, cancelFlush := flushContext(ctx, reachedEnd, deadline)
	if err := q.Flush(flushCtx); err != nil {
		p.log.Warn("Remote write flush did not send everything; the rest is sent after the next start", "err", err)
	} else if reachedEnd {
		// The whole log (or all before stopAt) was sent: RW2 exemplars
		// still waiting for a next sample of their series will not get one.
		q.DropHeld()
		p.caughtUp.Store(p.stopAt != nil)
	}
	cancelFlush()
	w.SavePosition()
	stopQueue()
	if err := <-queueDone; err != nil {
		p.log.Error("Remote write queue stopped with an error", "err", err)
	}
	return runErr
}

// flushContext bounds a flush: by deadline from now, or, when the whole
// log was read and ctx is still alive, until deadline after ctx ends.
func flushContext(ctx context.Context, reachedEnd bool, deadline time.Duration) (context.Context, context.CancelFunc) {
	if !reachedEnd || ctx.Err() != nil {
		return context.WithTimeout(context.Background(), deadline)
	}
	fctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(deadline, cancel)
		context.AfterFunc(fctx, func() { t.Stop() })
	})
	return fctx, func() { stop(); cancel() }
}

// catchUpBehind brings the members saved before the others to where the
// others are (catchUp) before the group starts, each with a pipeline of
// its own that stops there, so that no member is sent what it has
// already. A member not there within the group lag (its endpoint is down
// or slow) does not join: it ships alone, from its own position.
func (p *pipeline) catchUpBehind() {
	if len(p.behind) == 0 {
		return
	}
	ups := make([]*pipeline, len(p.behind))
	for i, ep := range p.behind {
		ups[i] = newPipeline(p.env, []*endpoint{ep}, nil)
		ups[i].stopAt = p.catchUp
		ups[i].startUnder(p.ctx)
	}
	deadline := time.NewTimer(p.env.opts.GroupLag)
	defer deadline.Stop()
wait:
	for _, c := range ups {
		select {
		case <-c.finished:
		case <-deadline.C:
			break wait
		case <-p.ctx.Done():
			break wait
		}
	}
	for i, c := range ups {
		ep := p.behind[i]
		c.stop()
		if c.caughtUp.Load() {
			ep.pipe.Store(p)
			continue
		}
		if p.fan != nil {
			p.fan.remove(ep)
		}
		p.positions.leave(ep)
		p.mu.Lock()
		if p.ctx.Err() == nil {
			p.log.Warn("Remote endpoint did not catch up with its group in time; it ships alone",
				"endpoint", ep.name, "endpoint_url", ep.url, "group_lag", p.env.opts.GroupLag)
			solo := newPipeline(p.env, []*endpoint{ep}, nil)
			p.children = append(p.children, solo)
			solo.startUnder(p.ctx)
		}
		p.mu.Unlock()
	}
}

// leave gives ep, which the fanout let go, a pipeline of its own from the
// group's last saved position: it resends what the group had not saved as
// acknowledged, to ep alone, at ep's pace. Called from a shard of the
// group's queue.
func (p *pipeline) leave(ep *endpoint, why string, err error) {
	if q := p.q.Load(); q != nil {
		q.Leave(ep.target())
	}
	from := p.positions.leave(ep)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended || p.ctx.Err() != nil {
		return // the saved position keeps ep's data for the next start
	}
	p.log.Warn("Remote endpoint left its group: it answered unlike the others, and is sent to from the group's saved position by a queue of its own",
		"left", ep.name, "left_url", ep.url, "reason", why, "err", err)
	child := newPipeline(p.env, []*endpoint{ep}, from)
	p.children = append(p.children, child)
	child.startUnder(p.ctx)
}

// notify wakes the watchers.
func (p *pipeline) notify() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		p.w.Notify()
	}
	for _, c := range p.children {
		c.notify()
	}
}

// highestSent is the newest sample timestamp the pipeline's queue sent.
func (p *pipeline) highestSent() int64 {
	ts := p.highestPrev.Load()
	if q := p.q.Load(); q != nil {
		ts = max(ts, q.HighestSentTimestamp())
	}
	return ts
}

// stop ends run (and the pipelines of members that left), flushing within
// the flush deadline.
func (p *pipeline) stop() {
	p.cancel()
	<-p.finished
}
