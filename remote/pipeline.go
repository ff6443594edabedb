package remote

import (
	"context"
	"errors"
	"log/slog"
	"slices"
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

// pipeline is one watcher of the WAL feeding the queues of its lanes: one
// lane for the members whose requests are the same bytes (shipped by one
// queue, through a fanout when there are several), a tee in front of the
// queues when there are several lanes. A member or a lane that leaves gets a
// pipeline of its own, owned by this one (children), that starts at the
// group's last saved position. run is its goroutine (besides the watcher's
// run, which it calls, and the queues'); stop ends it.
type pipeline struct {
	env       *shipping
	members   []*endpoint // every lane's, at the start
	lanes     []*lane     // those still in; changed by run's goroutine only
	positions *groupPositions
	start     watcher.Start
	// notBefore is, with --wal.start=now, the time the group started:
	// its later watchers (after a read error) and its children's send
	// nothing older, and start where the first one's saved position is.
	notBefore int64
	log       *slog.Logger

	// catchUp is where the group starts when some members were saved
	// before the others (behind): they catch up to it first.
	catchUp *record.Position
	behind  []*endpoint
	// stopAt ends a member's catching up: its pipeline stops there, and
	// caughtUp says whether everything before it was acknowledged.
	stopAt   *record.Position
	caughtUp atomic.Bool

	mu       sync.Mutex
	w        *watcher.Watcher // the current one, for Notify
	children []*pipeline
	ended    bool // run is past its loop: no more children

	ctx      context.Context
	cancel   context.CancelFunc
	finished chan struct{} // closed when run returns
}

// newPipeline returns a pipeline shipping to members, not started, from
// start. from, when set, is where it starts reading (members that left a
// group); notBefore, with --wal.start=now, is the time of the "now" it
// continues (Storage.plan sets it).
func newPipeline(env *shipping, members []*endpoint, start watcher.Start, from *record.Position, notBefore int64) *pipeline {
	p := &pipeline{
		env:       env,
		members:   members,
		lanes:     lanesOf(members),
		positions: &groupPositions{members: append([]*endpoint(nil), members...), from: from},
		start:     start,
		notBefore: notBefore,
		log:       env.log.With("remote_name", members[0].name, "url", members[0].url),
		finished:  make(chan struct{}),
	}
	if from != nil {
		p.start = watcher.FromPosition
	}
	for _, l := range p.lanes {
		if len(l.members) > 1 {
			l.fan = newFanout(l.members, env.opts.GroupLag, queue.NewBackoff(l.members[0].cfg.QueueConfig, nil),
				func(ep *endpoint, why string, err error) { p.leave(l, ep, why, err) })
		}
		for _, ep := range l.members {
			ep.lane.Store(l)
		}
	}
	return p
}

// startUnder runs the pipeline until parent ends or stop is called.
func (p *pipeline) startUnder(parent context.Context) {
	p.ctx, p.cancel = context.WithCancel(parent)
	go p.run()
}

// laneOf returns the lane ep started in.
func (p *pipeline) laneOf(ep *endpoint) *lane {
	for _, l := range p.lanes {
		if slices.Contains(l.members, ep) {
			return l
		}
	}
	return nil
}

// run ships until ctx ends (or, with StopAtEnd, until the whole log was
// shipped). When reading the WAL fails, the attempt ends as a stop does
// and a new one starts from the saved position after a pause. It returns
// once the pipelines of members that left have returned too.
func (p *pipeline) run() {
	defer close(p.finished)
	defer p.waitChildren()
	p.catchUpBehind()
	for len(p.lanes) > 0 {
		lanes := slices.Clone(p.lanes)
		for _, l := range lanes {
			if _, err := l.newQueue(p.env); err != nil {
				p.log.Error("Remote write endpoint stopped", "err", err)
				return
			}
		}
		err := p.attempt(p.ctx, lanes)
		for _, l := range lanes {
			l.endAttempt()
		}
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

// attempt runs the lanes' new queues fed by a new watcher until ctx ends,
// the log ends (StopAtEnd) or reading fails; then it flushes the queues of
// the lanes still in, saves the position the flushes reached and stops
// the queues. The flush is bounded by the flush deadline; after the end of
// the log it waits for everything to be acknowledged, and for at most the
// flush deadline more once ctx ends.
func (p *pipeline) attempt(ctx context.Context, lanes []*lane) error {
	opts := p.env.opts
	lead := lanes[0].shipTo()[0]
	var consumer watcher.Consumer = lanes[0].q.Load()
	if len(lanes) > 1 {
		consumer = newTee(lanes, opts.GroupLag, p.leaveLane)
	}
	w, err := watcher.New(consumer, watcher.Options{
		Dir:            opts.WALDir,
		Name:           lead.name,
		FS:             opts.FS,
		Start:          p.start,
		NotBefore:      p.notBefore,
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
	for _, l := range lanes {
		l.runQueue()
	}
	p.mu.Lock()
	p.w = w
	p.mu.Unlock()

	runErr := w.Run(ctx)
	if p.start == watcher.FromNow && p.positions.saved() {
		// "Now" began where the watcher saved. Under mu: startChild,
		// called from a shard on a leave, reads it.
		p.mu.Lock()
		p.start = watcher.FromPosition
		p.mu.Unlock()
	}

	reachedEnd := errors.Is(runErr, watcher.ErrReachedEnd)
	deadline := opts.FlushDeadline
	if p.stopAt != nil {
		deadline = 0 // stopped catching up: its group goes on without it
	}
	flushCtx, cancelFlush := flushContext(ctx, reachedEnd, deadline)
	if p.flush(flushCtx) && reachedEnd {
		// The whole log (or all before stopAt) was sent: RW2 exemplars
		// still waiting for a next sample of their series will not get one.
		for _, l := range p.lanes {
			l.q.Load().DropHeld()
		}
		p.caughtUp.Store(p.stopAt != nil)
	}
	cancelFlush()
	w.SavePosition()
	for _, l := range lanes {
		l.stop(p.log)
	}
	return runErr
}

// flush flushes the queues of the lanes still in, at once, and reports
// whether every one sent everything.
func (p *pipeline) flush(ctx context.Context) bool {
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, l := range p.lanes {
		wg.Go(func() {
			if err := l.q.Load().Flush(ctx); err != nil {
				failed.Store(true)
				p.log.Warn("Remote write flush did not send everything; the rest is sent after the next start",
					"lane", l.members[0].name, "err", err)
			}
		})
	}
	wg.Wait()
	return !failed.Load()
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
		ups[i] = newPipeline(p.env, []*endpoint{ep}, p.start, nil, p.notBefore)
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
		l := p.laneOf(ep)
		if c.caughtUp.Load() {
			ep.lane.Store(l)
			continue
		}
		if l.fan != nil {
			l.fan.remove(ep)
		}
		if l.fan == nil || len(l.fan.current()) == 0 { // ep was the lane
			p.lanes = slices.DeleteFunc(p.lanes, func(x *lane) bool { return x == l })
		}
		p.positions.leave(ep)
		p.startChild([]*endpoint{ep}, nil, "Remote endpoint did not catch up with its group in time; it ships alone",
			"endpoint", ep.name, "endpoint_url", ep.url, "group_lag", p.env.opts.GroupLag)
	}
}

// leave gives ep, which its lane's fanout let go, a pipeline of its own
// from the group's last saved position: it resends what the group had not
// saved as acknowledged, to ep alone, at ep's pace. Called from a shard of
// the lane's queue.
func (p *pipeline) leave(l *lane, ep *endpoint, why string, err error) {
	p.mu.Lock()
	withLane := slices.Contains(l.leftWith, ep)
	p.mu.Unlock()
	if withLane {
		return // the whole lane left with ep: it is in the lane's own pipeline
	}
	if q := l.q.Load(); q != nil {
		q.Leave(ep.target())
	}
	from := p.positions.leave(ep)
	p.startChild([]*endpoint{ep}, from, "Remote endpoint left its group: it answered unlike the others, and is sent to from the group's saved position by a queue of its own",
		"left", ep.name, "left_url", ep.url, "reason", why, "err", err)
}

// leaveLane gives l, which the tee let go (its queue took nothing for the
// group's lag while another lane's took more), a pipeline of its own from
// the group's last saved position, and stops its queue where it is: what
// the lane's endpoints had not acknowledged is sent again by the new
// pipeline, at their pace. Called from the watcher, in run's goroutine.
func (p *pipeline) leaveLane(l *lane) {
	p.mu.Lock()
	members := l.shipTo() // a member its fanout let go before has a pipeline of its own
	l.leftWith = members
	p.mu.Unlock()
	p.lanes = slices.DeleteFunc(p.lanes, func(x *lane) bool { return x == l })
	l.stopQueue()
	var from *record.Position
	names := make([]string, len(members))
	for i, ep := range members {
		from, names[i] = p.positions.leave(ep), ep.name
	}
	p.startChild(members, from, "Remote endpoints fell behind the others their watcher reads for: they are sent to from the group's saved position by a watcher of their own",
		"left", names, "group_lag", p.env.opts.GroupLag)
}

// startChild starts a pipeline for members that left, from (nil: as this
// one started), unless this one is stopping (their saved positions then
// keep their data for the next start).
func (p *pipeline) startChild(members []*endpoint, from *record.Position, msg string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended || p.ctx.Err() != nil {
		return
	}
	p.log.Warn(msg, args...)
	child := newPipeline(p.env, members, p.start, from, p.notBefore)
	p.children = append(p.children, child)
	child.startUnder(p.ctx)
}

// split reports whether members left the group: they ship with
// pipelines of their own.
func (p *pipeline) split() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.children) > 0
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

// stop ends run (and the pipelines of members that left), flushing within
// the flush deadline.
func (p *pipeline) stop() {
	p.cancel()
	<-p.finished
}
