package remote

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// A member that leaves its group (its endpoint was down, slow, or refused
// what the others took) ships from then on with a pipeline of its own: a
// second watcher reads and decodes the WAL, and a second queue holds every
// series. Once its endpoint is back and it has caught up, that costs
// twice for nothing, so the Storage re-forms the group while it runs: the
// regrouper looks at every pipeline with members that left, and once
// every member has kept up with the others (saved, at each look, at least
// the newest position any of them had saved at the look before) for
// Options.RegroupAfter, it restarts the pipeline as a reload restarts a
// changed one (flushed, positions saved) with all its members in one
// group again. A member saved behind the others then catches up first
// (pipeline.catchUpBehind), so nothing is sent twice or skipped.
//
// Whether a member kept up is judged by its saved position only: an
// endpoint that answers, but slower than the group lag, or that refuses
// everything for good (its queue counts it failed and goes on), keeps up
// alone and leaves again soon after the group re-formed, holding the
// others back by at most the lag each time. So a set of members waits
// twice as long before each next time, up to maxRegroupWait, until it has
// not re-formed for twice that.

// DefaultRegroupAfter is how long the members of a group that split must
// have kept up with each other before the Storage re-forms the group.
const DefaultRegroupAfter = 5 * time.Minute

// maxRegroupWait bounds how long a set of members that keeps splitting
// waits before the group re-forms again (unless RegroupAfter is longer).
const maxRegroupWait = time.Hour

// regroupChecks is how many times per Options.RegroupAfter the regrouper
// looks at the pipelines.
const regroupChecks = 4

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

// keepingUp is what the regrouper knows of one split pipeline: since when
// its members have kept up with each other, and the newest position any
// of them had saved at the last look.
type keepingUp struct {
	since  time.Time
	newest record.Position
}

// regroupLoop looks at the running pipelines regroupChecks times per
// RegroupAfter until ctx ends, and restarts those whose members have kept
// up with each other for as long as their set has to wait.
func (s *Storage) regroupLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(max(s.opts.RegroupAfter/regroupChecks, time.Millisecond))
	defer tick.Stop()
	seen := map[*pipeline]keepingUp{}
	waits := regroupWaits{base: s.opts.RegroupAfter, sets: map[string]regroupWait{}}
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
		waits.forget(now)
		next := make(map[*pipeline]keepingUp, len(seen))
		for _, p := range running {
			newest, saved := newestSaved(p.members)
			if !saved || !p.split() {
				continue
			}
			last, ok := seen[p]
			key := membersKey(p.members)
			switch {
			case !ok || !keptUp(p.members, last.newest):
				next[p] = keepingUp{since: now, newest: newest}
			case now.Sub(last.since) < waits.of(key):
				next[p] = keepingUp{since: last.since, newest: newest}
			case s.regroup(p):
				waits.regrouped(key, now)
			}
		}
		seen = next
	}
}

// newestSaved returns the newest position eps saved, and false unless
// every one of them saved one in this process.
func newestSaved(eps []*endpoint) (newest record.Position, all bool) {
	for _, ep := range eps {
		pos, ok := ep.positions.savedHere()
		if !ok {
			return newest, false
		}
		if newest.Less(pos) {
			newest = pos
		}
	}
	return newest, true
}

// keptUp reports whether every one of eps has saved at least newest, the
// newest position any of them had at the last look: none fell behind.
func keptUp(eps []*endpoint, newest record.Position) bool {
	for _, ep := range eps {
		if pos, _ := ep.positions.savedHere(); pos.Less(newest) {
			return false
		}
	}
	return true
}

// membersKey names a set of members: their configuration hashes.
func membersKey(eps []*endpoint) string {
	hashes := make([]string, len(eps))
	for i, ep := range eps {
		hashes[i] = ep.hash
	}
	return strings.Join(hashes, ",")
}

// regroupWaits is how long each set of members (membersKey) waits
// before its group re-forms the next time.
type regroupWaits struct {
	base time.Duration // Options.RegroupAfter
	sets map[string]regroupWait
}

// regroupWait is a set's next wait, and when its group last re-formed.
type regroupWait struct {
	wait time.Duration
	last time.Time
}

// most is the longest a set waits.
func (w *regroupWaits) most() time.Duration { return max(w.base, maxRegroupWait) }

// of returns how long the set key waits.
func (w *regroupWaits) of(key string) time.Duration {
	if st, ok := w.sets[key]; ok {
		return st.wait
	}
	return w.base
}

// regrouped notes that the set key re-formed at now: it waits twice as
// long the next time, up to most.
func (w *regroupWaits) regrouped(key string, now time.Time) {
	w.sets[key] = regroupWait{wait: min(2*w.of(key), w.most()), last: now}
}

// forget drops the sets that have not re-formed for twice the longest
// wait: they wait base again.
func (w *regroupWaits) forget(now time.Time) {
	for key, st := range w.sets {
		if now.Sub(st.last) > 2*w.most() {
			delete(w.sets, key)
		}
	}
}

// regroup restarts p, whose members left its group and kept up since, as
// a reload restarts a changed pipeline: it stops flushed, its members'
// positions saved, and they start again as one group, those saved behind
// catching up first. It reports whether it did (not when a reload or
// Close stopped p meanwhile).
func (s *Storage) regroup(p *pipeline) bool {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	i := slices.Index(s.pipelines, p)
	if s.closed || s.regroupCtx.Err() != nil || i < 0 {
		s.mu.Unlock()
		return false
	}
	s.pipelines = slices.Delete(slices.Clone(s.pipelines), i, i+1)
	s.mu.Unlock()
	names := make([]string, len(p.members))
	for i, ep := range p.members {
		names[i] = ep.name
	}
	p.log.Info("Remote endpoints that left their group have kept up with it: they restart as one group", "endpoints", names)
	p.stop()
	s.letGo()
	g := plannedGroup{members: p.members, start: watcher.FromPosition, notBefore: p.notBefore}
	g.findBehind(func(ep *endpoint) (record.Position, bool) {
		pos, _ := ep.positions.savedHere() // each saved when it stopped
		return pos, true
	})
	s.start(p.env, []plannedGroup{g})
	s.regroups.Inc()
	return true
}
