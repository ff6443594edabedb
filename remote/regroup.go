package remote

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walship/walship/wal/record"
)

// A member that leaves its group (its endpoint was down, slow, or refused
// what the others took) ships from then on with a pipeline of its own: a
// second watcher reads and decodes the WAL, and a second queue holds every
// series. Once its endpoint is back and it has caught up, that costs
// twice for nothing, so the Storage re-forms the group while it runs, as a
// start would have formed it: the regrouper looks at every pipeline with
// members that left, and once all its members have kept up with each
// other for Options.RegroupAfter, it restarts the pipeline as a reload
// restarts a changed one (flushed, positions saved, the members planned
// into groups again). A member saved a little behind the others then
// catches up first (pipeline.catchUpBehind), so nothing is sent twice or
// skipped. An endpoint that fails again leaves again; the group restarts
// at most once per RegroupAfter for it.

// DefaultRegroupAfter is how long the members of a group that split must
// have kept up with each other before the Storage re-forms the group.
const DefaultRegroupAfter = 5 * time.Minute

// regroupChecks is how many times per Options.RegroupAfter the regrouper
// looks at the pipelines.
const regroupChecks = 4

// keepingUp is what the regrouper knows of one split pipeline: since when
// its members have kept up with each other, and the newest position any
// of them had saved at the last look.
type keepingUp struct {
	since  time.Time
	newest record.Position
}

// newRegroupsCounter returns walship_remote_storage_regroups_total,
// registered with reg when set.
func newRegroupsCounter(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "walship", Subsystem: "remote_storage", Name: "regroups_total",
		Help: "Groups of remote_write entries re-formed while running, after members that had left them kept up again.",
	})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// startRegrouping starts the regrouper once. Called under applyMu.
func (s *Storage) startRegrouping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.regroupDone != nil || s.closed {
		return
	}
	s.regroupDone = make(chan struct{})
	go s.regroupLoop(s.regroupCtx, s.regroupDone)
}

// stopRegrouping stops the regrouper and waits for it. Called without
// applyMu held: a regroup in progress takes it.
func (s *Storage) stopRegrouping() {
	s.regroupCancel()
	s.mu.Lock()
	done := s.regroupDone
	s.mu.Unlock()
	if done != nil {
		<-done
	}
}

// regroupLoop looks at the running pipelines regroupChecks times per
// RegroupAfter until ctx ends, and restarts those whose members kept up
// with each other since at least RegroupAfter.
func (s *Storage) regroupLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(s.opts.RegroupAfter / regroupChecks)
	defer tick.Stop()
	seen := map[*pipeline]keepingUp{}
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-tick.C:
		}
		s.mu.Lock()
		running := slices.Clone(s.pipelines)
		s.mu.Unlock()
		next := make(map[*pipeline]keepingUp, len(seen))
		for _, p := range running {
			if !p.split() {
				continue
			}
			newest, near := savedNear(p.members)
			last, ok := seen[p]
			switch {
			case !near:
				continue
			case !ok || !keptUp(p.members, last.newest):
				next[p] = keepingUp{since: now, newest: newest}
			case now.Sub(last.since) < s.opts.RegroupAfter:
				next[p] = keepingUp{since: last.since, newest: newest}
			case ctx.Err() == nil:
				s.regroup(p)
			}
		}
		seen = next
	}
}

// savedNear returns the newest position eps saved and whether all of
// them were saved within regroupSlack of it, in its segment: a start
// would put them in one group.
func savedNear(eps []*endpoint) (newest record.Position, near bool) {
	for _, ep := range eps {
		if pos := ep.positions.acked(); newest.Less(pos) {
			newest = pos
		}
	}
	for _, ep := range eps {
		pos := ep.positions.acked()
		if pos.Segment != newest.Segment || newest.Offset-pos.Offset > regroupSlack {
			return newest, false
		}
	}
	return newest, true
}

// keptUp reports whether every one of eps has saved at least the newest
// position any of them had at the last look: none is left behind.
func keptUp(eps []*endpoint, newest record.Position) bool {
	for _, ep := range eps {
		if ep.positions.acked().Less(newest) {
			return false
		}
	}
	return true
}

// regroup restarts p, whose members left its group and kept up since, as
// a reload restarts a changed pipeline: it stops flushed, its members'
// positions saved, and they start again in the groups a start would form.
func (s *Storage) regroup(p *pipeline) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	i := slices.Index(s.pipelines, p)
	if s.closed || i < 0 {
		s.mu.Unlock()
		return // a reload or Close stopped it meanwhile
	}
	s.pipelines = slices.Delete(slices.Clone(s.pipelines), i, i+1)
	current := s.endpoints
	s.mu.Unlock()
	names := make([]string, len(p.members))
	for i, ep := range p.members {
		names[i] = ep.name
	}
	p.log.Info("Remote endpoints that left their group have kept up with it: their pipelines restart as one group", "endpoints", names)
	p.stop()
	s.start(p.env, p.members, current)
	s.regroups.Inc()
}
