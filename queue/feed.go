package queue

import (
	"github.com/walship/walship/wal/record"
)

// This file queues one record's items into their series' shards, each
// written once, in place, under every shard's lock, and joins RW2
// exemplars to the sample they travel with.

// feed queues one record's items. Between beginFeed and end it holds every
// shard's lock, so each item is written once, in place, into its shard's
// queue, and a shard sees a record's items all at once. No item after the
// first that finds its shard full is queued: the watcher hands the rest
// over again once there is room, and nothing is queued twice.
type feed struct {
	in     *intake
	shards []*shard
	kind   itemKind // what the record holds
	seq    uint64   // the record in the ack tracker
	oldest int64    // sample_age_limit cut-off (ms); math.MinInt64 for none
	newest int64    // newest timestamp queued (ms)

	queued, unknown, dropped, tooOld int
	indexed                          bool // m.carriers is built for this record
}

// beginFeed starts queueing a record of n items of kind at span at. It returns nil
// when no shards take items now (resharding, or not running); the watcher
// then waits for Ready.
func (in *intake) beginFeed(at record.Span, n int, kind itemKind) *feed {
	in.signals.waited.resume(in.age.now)
	if in.held.n.Load() > 0 {
		in.sweepHeld(in.age.now())
	}
	shards := in.shards.acquire()
	if shards == nil {
		in.signals.waited.wait(in.age.now())
		return nil
	}
	f := &in.feeding
	*f = feed{in: in, shards: shards, kind: kind, oldest: in.age.oldest()}
	for _, s := range f.shards {
		s.mu.Lock()
	}
	f.seq = in.ledger.acks.begin(at.Start, n, kind) // corrected in end to what was queued
	return f
}

// slot returns the item to fill in for a sample of series ref at time t,
// with its series and record set. It returns nil and true for a sample that
// is dropped (unknown series, dropped by relabelling, too old), and false
// when the series' shard is full: queueing stops there.
func (f *feed) slot(ref record.Ref, t int64) (*item, bool) {
	s, mirrored := f.in.series.lookup(ref)
	switch {
	case s == nil:
		f.unknown++
		return nil, true
	case s.state == seriesDropped:
		f.dropped++
		return nil, true
	case t < f.oldest:
		f.tooOld++
		return nil, true
	}
	sh := f.shards[uint64(ref)%uint64(len(f.shards))]
	if sh.roomLocked() == 0 {
		f.in.metrics.enqueueRetries.Inc()
		return nil, false
	}
	it := sh.queue.push()
	*it = item{series: s.data, seq: f.seq, t: t}
	if s.held && !mirrored && f.kind != kindExemplar { // a mirrored series' held is another queue's
		// RW2 exemplars that came too late for the series' previous
		// sample travel with this one.
		s.held = false
		if held := f.in.held.take(s.data); held != nil {
			it.withExtra().attached = held
		}
	}
	f.queued++
	f.newest = max(f.newest, t)
	return it, true
}

// attach joins exemplar e to the newest sample or histogram of its series
// still waiting in its shard, and reports whether it did. RW2 sends an
// exemplar only in the entry of a sample or histogram of its series, and
// a WAL logs a commit's exemplars after its samples: by the time they are
// read, the shard may have cut the batch holding the sample, or will cut
// one between them. Joined here, they travel together whatever the batch
// boundaries. An exemplar that finds nothing (the batch went out in
// between) is held for the series' next sample or histogram
// (heldExemplars). It returns false for an exemplar slot drops.
func (f *feed) attach(e *record.RefExemplar) bool {
	s, mirrored := f.in.series.lookup(e.Ref)
	if s == nil || s.state != seriesKept || e.T < f.oldest {
		return false // slot counts it
	}
	if !f.indexed {
		f.indexCarriers()
	}
	a := attachedExemplar{labels: e.Labels, t: e.T, v: e.V, seq: f.seq}
	f.queued++ // pending until its carrier is finished, or it is dropped
	if it := f.in.carriers[s.data]; it != nil {
		x := it.withExtra()
		x.attached = append(x.attached, a)
		return true
	}
	f.in.held.hold(s.data, a, f.in.age.now())
	if mirrored {
		s = f.in.series.own(e.Ref) // held is this queue's: the series takes a slot of its own
	}
	s.held = true
	return true
}

// carrierRecords is how many records back attach looks for a carrier: a
// WAL logs a commit's samples, histograms and exemplars one after another.
const carrierRecords = 16

// indexCarriers maps each series with a sample or histogram among the
// last carrierRecords records still waiting in the shards to its newest
// such item, reading each shard's queue from its newest item back. The
// feed holds every shard's lock, so the items stay where they are until
// it ends.
func (f *feed) indexCarriers() {
	f.indexed = true
	if f.in.carriers == nil {
		f.in.carriers = map[*encodedSeries]*item{}
	}
	carriers := f.in.carriers
	clear(carriers)
	oldest := uint64(0)
	if f.seq > carrierRecords {
		oldest = f.seq - carrierRecords
	}
shards:
	for _, sh := range f.shards {
		chunks := sh.queue.chunks
		for ci := len(chunks) - 1; ci >= 0; ci-- {
			c := chunks[ci]
			for i := len(c) - 1; i >= 0; i-- {
				it := &c[i]
				if it.seq < oldest {
					continue shards
				}
				if _, seen := carriers[it.series]; !seen && it.kind != kindExemplar {
					carriers[it.series] = it
				}
			}
		}
	}
}

// maxKeptCarriers bounds the carrier index kept between exemplar records.
const maxKeptCarriers = 4096

// end finishes the record after handled of its total items were looked
// at, wakes shards with a full batch, and returns handled.
func (f *feed) end(handled, total int) int {
	in := f.in
	for _, s := range f.shards {
		full := s.queue.len() >= in.batch
		s.mu.Unlock()
		if full {
			s.wake.notify()
		}
	}
	in.shards.release()
	if f.indexed {
		// Let go of the items and series; keep a small map for the next.
		if len(in.carriers) > maxKeptCarriers {
			in.carriers = nil
		}
		clear(in.carriers)
	}
	drops := &in.metrics.classes[f.kind.class()].dropped
	drops.unknownSeries.Add(float64(f.unknown))
	drops.droppedSeries.Add(float64(f.dropped))
	drops.tooOld.Add(float64(f.tooOld))
	// Everything not queued (dropped, or left for the retry) is not pending
	// under this record's sequence number.
	in.ledger.acks.done(f.seq, total-f.queued)
	if f.newest > in.signals.newestQueued.Load() {
		in.signals.newestQueued.Store(f.newest)
		in.metrics.highestQueued.Set(float64(f.newest) / 1000)
	}
	in.signals.in.add(int64(f.queued))
	f.shards = nil
	if handled < total {
		in.signals.waited.wait(in.age.now())
	}
	return handled
}
