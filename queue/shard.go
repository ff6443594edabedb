package queue

import (
	"context"
	"sync"
	"time"
)

// This file is a shard: its bounded buffer of items, and the loop that
// cuts them into batches, has each built into a request and delivers it
// (deliver.go), with the next request built while one is on the wire.

// shardParts are what every shard of a queue shares: the parts it reports
// to and the queue_config it batches by.
type shardParts struct {
	policy    *sendPolicy
	ledger    *ledger
	labels    *labelTable
	lane      uint8         // Options.Lane: whose encodings' RW2 refs it caches
	batchSize int           // max_samples_per_send: items per batch
	deadline  time.Duration // batch_send_deadline
	capacity  int           // items a shard holds
	room      wakeup        // notified when items leave a shard
}

// shard holds a bounded buffer of items and one goroutine that batches them
// into requests and sends each until the endpoint takes it (or refuses it
// for good). Items of one series always go to the same shard, so a series'
// samples are sent in order.
type shard struct {
	shardParts

	mu    sync.Mutex
	queue itemQueue // guarded by mu

	flights  [2]flight         // the request on the wire and the next one (see run)
	builders [2]requestBuilder // by Protocol, made when first needed (run's)

	wake wakeup // a batch may be ready
}

// flight is a batch taken from a shard's queue with the request built
// from it. A shard has two: while the endpoint answers one, the shard
// builds the next (see shard.run).
type flight struct {
	batch []item
	req   Request      // reused (it escapes to the Sender)
	built bool         // req is batch's request (see prepare)
	sum   batchSummary // what req's items are, for accounting
	body  snappyStream // req's body
}

func newShard(p shardParts) *shard {
	return &shard{shardParts: p, queue: itemQueue{batch: p.batchSize}, wake: newWakeup()}
}

// roomLocked returns how many more items the shard takes now; s.mu is held.
func (s *shard) roomLocked() int { return s.capacity - s.queue.len() }

func (s *shard) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.len()
}

// builder returns the builder of the protocol the queue speaks now.
func (s *shard) builder() requestBuilder {
	p := s.policy.proto.current()
	if s.builders[p] == nil {
		s.builders[p] = newBuilder(p, s.labels, s.lane)
	}
	return s.builders[p]
}

// run sends batches until ctx ends: a full batch at once, a partial one
// when the batch deadline passes without a send. When drain is closed it
// sends everything left and returns (a reshard or a flush).
//
// One request is on the wire at a time, so that a series' samples arrive
// in order, but the shard does not sit idle while it is: the first
// attempt of each request goes out from a second goroutine (wire) while
// run takes and builds the next full batch, if one waits. Retries,
// halvings and the fall-back to RW1 are sent from run itself. Only run
// builds requests: the encoders and the series' cached RW2 fields have one
// writer.
func (s *shard) run(ctx context.Context, drain <-chan struct{}) {
	deadline := time.NewTimer(s.deadline)
	defer deadline.Stop()

	launch, landed := make(chan *Request), make(chan attemptResult)
	var wire sync.WaitGroup
	wire.Go(func() {
		for req := range launch {
			landed <- s.policy.attempt(ctx, req, 0)
		}
	})
	var ahead *flight // built while the last request was on the wire
	defer func() {
		close(launch)
		wire.Wait()
		if ahead != nil { // ctx ended: its items stay pending
			s.done(ahead.batch)
		}
	}()

	send := func(least int) bool {
		f := ahead
		ahead = nil
		if f == nil {
			if f = s.prepare(least, nil); f == nil {
				return false
			}
		}
		if !s.ready(f) {
			s.done(f.batch) // every item grew too old while it waited
			return true
		}
		var first *attemptResult
		if f.built { // one request: its first attempt goes out from wire
			launch <- &f.req
			ahead = s.prepare(s.batchSize, f)
			r := <-landed
			first = &r
		}
		s.deliver(ctx, f, first)
		s.done(f.batch)
		resetTimer(deadline, s.deadline)
		return true
	}
	for ctx.Err() == nil {
		if send(s.batchSize) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-deadline.C:
			send(1)
			deadline.Reset(s.deadline)
		case <-drain:
			for ctx.Err() == nil && send(1) {
			}
			return
		}
	}
}

// prepare takes the oldest batch if at least least items wait into the
// flight that is not busy, and builds its request when it fits in one
// (see sizeLimit). It returns nil when fewer wait.
func (s *shard) prepare(least int, busy *flight) *flight {
	batch := s.take(least)
	if batch == nil {
		return nil
	}
	f := &s.flights[0]
	if f == busy {
		f = &s.flights[1]
	}
	f.batch, f.built = batch, false
	if len(batch) <= s.policy.sizes.current() {
		s.encode(f, batch)
	}
	return f
}

// ready makes f right to send now. It removes the items that grew older
// than sample_age_limit while they waited (in the buffer, or built behind
// a request being retried), as upstream drops them when it builds a
// batch, and marks the request to be built again (by deliver) when that
// removed some, when the queue fell back to RW1 since it was built, or
// when a 413 lowered the request size below it. It reports whether any
// item is left to send.
func (s *shard) ready(f *flight) bool {
	kept, removed := s.ledger.dropExpired(f.batch)
	f.batch = kept
	if len(kept) == 0 {
		return false
	}
	if removed > 0 || f.req.Protocol != s.policy.proto.current() || len(kept) > s.policy.sizes.current() {
		f.built = false
	}
	return true
}

// take removes and returns the oldest batch if at least least items wait.
func (s *shard) take(least int) []item {
	s.mu.Lock()
	batch := s.queue.pop(least)
	s.mu.Unlock()
	if batch != nil {
		s.room.notify()
	}
	return batch
}

// done hands a sent batch's memory back for reuse.
func (s *shard) done(batch []item) {
	s.mu.Lock()
	s.queue.recycle(batch)
	s.mu.Unlock()
}

// encode builds and compresses the request of batch into f, in the
// protocol the queue speaks now, and sets the request's counts and f's
// summary. A body the Sender said it may still read is left to it:
// this one gets new memory.
func (s *shard) encode(f *flight, batch []item) {
	b := s.builder()
	if f.req.BodyInUse {
		f.body = snappyStream{}
	}
	f.req = Request{Protocol: b.protocol()}
	f.req.Body = b.build(batch, &f.sum, &f.body)
	f.req.Samples, f.req.Histograms, f.req.Exemplars = b.counts()
	f.built = true
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}
