package queue

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// This file is the set of shards a queue runs: started, drained and
// replaced by Run's goroutine (a reshard, a flush), read by the feeder.

// shardSet is the queue's running shards. The feeder reads them under
// mu's read lock (acquire/release) so that a reshard never moves an item
// between shards; Run's goroutine replaces them under the write lock.
type shardSet struct {
	parts shardParts
	gauge prometheus.Gauge // prometheus_remote_storage_shards

	mu     sync.RWMutex
	shards []*shard // guarded by mu; nil while none take items

	drain chan struct{}  // closed to make the shards send what they hold and return
	wg    sync.WaitGroup // the shards' goroutines
}

// start runs n new shards until ctx ends or they are drained.
func (s *shardSet) start(ctx context.Context, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked(ctx, n)
}

func (s *shardSet) startLocked(ctx context.Context, n int) {
	drain := make(chan struct{})
	s.drain = drain
	s.shards = make([]*shard, n)
	for i := range s.shards {
		sh := newShard(s.parts)
		s.shards[i] = sh
		s.wg.Go(func() { sh.run(ctx, drain) })
	}
	s.gauge.Set(float64(n))
}

// replace lets the shards send what they hold, waits for them, and starts
// n new ones, unless ctx ended meanwhile (it reports false then, and no
// shards run). The feeder is held off throughout: no item changes shard
// while queued, so each series stays in order.
func (s *shardSet) replace(ctx context.Context, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.drain)
	s.wg.Wait()
	if ctx.Err() != nil {
		s.shards = nil
		return false
	}
	s.startLocked(ctx, n)
	return true
}

// detach stops the feeder from queueing more: the shards keep what they
// hold.
func (s *shardSet) detach() {
	s.mu.Lock()
	s.shards = nil
	s.mu.Unlock()
}

// finish makes the shards send what they hold and return; the returned
// channel is closed once they have.
func (s *shardSet) finish() <-chan struct{} {
	close(s.drain)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	return done
}

// wait waits for the shards' goroutines to return.
func (s *shardSet) wait() { s.wg.Wait() }

// acquire returns the shards for the feeder to queue into, holding the
// read lock until release; nil (and no lock) when none take items now.
func (s *shardSet) acquire() []*shard {
	if !s.mu.TryRLock() {
		return nil
	}
	if len(s.shards) == 0 {
		s.mu.RUnlock()
		return nil
	}
	return s.shards
}

// release ends what acquire began.
func (s *shardSet) release() { s.mu.RUnlock() }

// load returns how many shards run and how many items wait in them.
func (s *shardSet) load() (shards, pending int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sh := range s.shards {
		pending += sh.pending()
	}
	return len(s.shards), pending
}

// wakeup is a notification that coalesces: notify never blocks, and one
// receive answers any number of notifies.
type wakeup chan struct{}

func newWakeup() wakeup { return make(wakeup, 1) }

func (w wakeup) notify() {
	select {
	case w <- struct{}{}:
	default:
	}
}
