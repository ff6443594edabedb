package queue

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// item is one sample (or histogram, or exemplar) waiting in a shard. It
// holds two pointers only, so that moving items costs the garbage collector
// little; what histograms and exemplars need besides is in extra.
type item struct {
	series *encodedSeries
	extra  *itemExtra // nil for float samples
	t, st  int64      // timestamp and start timestamp
	v      float64
	seq    uint64 // ack tracker record
	kind   itemKind
}

// itemExtra is the part of a histogram or exemplar item a float sample
// does not need.
type itemExtra struct {
	h   *histogram.Histogram      // a copy the shard owns
	fh  *histogram.FloatHistogram // a copy the shard owns
	exl labels.Labels             // exemplar labels

	// attached are exemplars of a sample's or histogram's series that
	// joined it while it waited (RW2 queues; see feed.attach): they travel
	// in its request and are acknowledged with it.
	attached []attachedExemplar
}

// withExtra returns the item's extra part, adding one if it has none.
func (it *item) withExtra() *itemExtra {
	if it.extra == nil {
		it.extra = &itemExtra{}
	}
	return it.extra
}

// attachedExemplar is an exemplar riding with a sample or histogram item.
type attachedExemplar struct {
	labels labels.Labels
	t      int64
	v      float64
	seq    uint64 // its own record in the ack tracker
}

type itemKind uint8

const (
	kindSample itemKind = iota
	kindHistogram
	kindFloatHistogram
	kindExemplar
)

// itemClass is what the metrics count an item as: a sample, a histogram
// (integer or float) or an exemplar.
type itemClass int

const (
	classSamples itemClass = iota
	classHistograms
	classExemplars
	numClasses
)

func (k itemKind) class() itemClass {
	switch k {
	case kindHistogram, kindFloatHistogram:
		return classHistograms
	case kindExemplar:
		return classExemplars
	}
	return classSamples
}

// requestBuilder turns a batch of items into the snappy-compressed
// protobuf body of one request, compressed by c, noting in sum what the
// shard needs to know of the batch besides (one pass over the items). The
// body is valid until c is used again; counts says what it carries.
type requestBuilder interface {
	build(batch []item, sum *batchSummary, c *snappyStream) []byte
	counts() (samples, histograms, exemplars int)
	protocol() Protocol // what the body is
}

// batchSummary is what accounting for a batch needs besides the counts,
// gathered while the batch is built so that the items are walked once.
type batchSummary struct {
	newest int64    // newest timestamp in the batch
	extras bool     // some item has an extra part
	runs   []ackRun // the items of each record, in batch order
}

// ackRun is a run of adjacent items of one record: the items of a record
// are mostly adjacent, so the ack tracker is told once per run.
type ackRun struct {
	seq uint64
	n   int
}

func (s *batchSummary) reset() {
	*s = batchSummary{runs: s.runs[:0]}
}

// add notes one item of the batch.
func (s *batchSummary) add(it *item) {
	s.newest = max(s.newest, it.t)
	if n := len(s.runs); n > 0 && s.runs[n-1].seq == it.seq {
		s.runs[n-1].n++
	} else {
		s.runs = append(s.runs, ackRun{seq: it.seq, n: 1})
	}
	s.extras = s.extras || it.extra != nil
}

// rw1Builder builds RW1 requests from items, writing each series' labels
// from the label table.
type rw1Builder struct {
	RW1Encoder
	tab     *labelTable
	dir     labelDir // tab's chunks as of the build: every queued item's labels
	scratch []byte
}

// build compresses each 64 KiB of the body as soon as it is written.
func (b *rw1Builder) build(batch []item, sum *batchSummary, c *snappyStream) []byte {
	b.Reset()
	sum.reset()
	c.reset()
	b.dir = b.tab.snapshot()
	for i := range batch {
		it := &batch[i]
		sum.add(it)
		b.add(it)
		for len(b.series) >= snappyBlockSize {
			c.block(b.series[:snappyBlockSize])
			b.series = b.series[:copy(b.series, b.series[snappyBlockSize:])]
		}
	}
	return c.finish(b.Bytes())
}

func (b *rw1Builder) protocol() Protocol { return RW1 }

func (b *rw1Builder) counts() (samples, histograms, exemplars int) {
	samples, histograms, exemplars, _ = b.Counts()
	return samples, histograms, exemplars
}

// labels returns the RW1 label entries of d, valid until the next call.
func (b *rw1Builder) labels(d *encodedSeries) []byte {
	b.scratch = appendRW1Set(b.scratch[:0], b.dir, b.tab.strings, d.set)
	return b.scratch
}

func (b *rw1Builder) add(it *item) {
	if it.kind == kindSample && it.extra == nil {
		b.addSampleSet(b.dir, b.tab.strings, it.series.set, it.t, it.v)
		return
	}
	ls := b.labels(it.series)
	switch it.kind {
	case kindSample:
		b.AddSample(ls, it.t, it.v)
	case kindHistogram:
		b.AddHistogram(ls, it.t, it.extra.h)
	case kindFloatHistogram:
		b.AddFloatHistogram(ls, it.t, it.extra.fh)
	case kindExemplar:
		b.AddExemplar(ls, it.extra.exl, it.t, it.v)
		return
	}
	for _, a := range it.extra.attached { // RW1 sends exemplars in entries of their own
		b.AddExemplar(ls, a.labels, a.t, a.v)
	}
}

// rw2Builder builds RW2 requests from items. RW2 wants exemplars sent
// with a sample or histogram of their series (it forbids entries with
// exemplars only): an RW2 queue's exemplars ride the item of one
// (itemExtra.attached, see feed.attach and heldExemplars), and are built
// into its entry.
type rw2Builder struct {
	*rw2Encoder
	exemplars []rw2Exemplar // the item's attached exemplars, reused
}

func newRW2Builder(tab *labelTable) *rw2Builder {
	return &rw2Builder{rw2Encoder: newRW2Encoder(tab)}
}

// build compresses the body once it is whole: the symbol table, which
// comes first, is known only then.
func (b *rw2Builder) build(batch []item, sum *batchSummary, c *snappyStream) []byte {
	b.Reset()
	sum.reset()
	for i := range batch {
		it := &batch[i]
		sum.add(it)
		b.add(it)
	}
	return c.whole(b.Bytes())
}

func (b *rw2Builder) counts() (samples, histograms, exemplars int) { return b.Counts() }

func (b *rw2Builder) protocol() Protocol { return RW2 }

func (b *rw2Builder) add(it *item) {
	ex := b.attached(it)
	switch it.kind {
	case kindSample:
		if ex == nil {
			b.AddSample(it.series, it.t, it.v, it.st)
		} else {
			b.AddSampleWithExemplars(it.series, it.t, it.v, it.st, ex)
		}
	case kindHistogram:
		b.AddHistogramWithExemplars(it.series, it.t, it.extra.h, nil, it.st, ex)
	case kindFloatHistogram:
		b.AddHistogramWithExemplars(it.series, it.t, nil, it.extra.fh, it.st, ex)
	case kindExemplar:
		// RW2 queues queue no exemplar items; one would go alone, and
		// the endpoint would refuse the request (counted as failed).
		b.AddExemplar(it.series, it.extra.exl, it.t, it.v)
	}
}

// attached returns the exemplars riding it, valid until the next call;
// nil when it has none.
func (b *rw2Builder) attached(it *item) []rw2Exemplar {
	if it.extra == nil || len(it.extra.attached) == 0 {
		return nil
	}
	b.exemplars = b.exemplars[:0]
	for _, a := range it.extra.attached {
		b.exemplars = append(b.exemplars, rw2Exemplar{Labels: a.labels, T: a.t, V: a.v})
	}
	return b.exemplars
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

// shard holds a bounded buffer of items and one goroutine that batches them
// into requests and sends each until the endpoint takes it (or refuses it
// for good). Items of one series always go to the same shard, so a series'
// samples are sent in order.
type shard struct {
	m        *Manager
	capacity int

	mu    sync.Mutex
	queue itemQueue // guarded by mu

	flights [2]flight      // the request on the wire and the next one (see run)
	rw1     requestBuilder // set when the queue fell back from RW2 to RW1

	wake chan struct{} // a batch may be ready
}

func newShard(m *Manager, capacity int) *shard {
	return &shard{m: m, capacity: capacity, queue: itemQueue{batch: m.batchSize}, wake: make(chan struct{}, 1)}
}

// roomLocked returns how many more items the shard takes now; s.mu is held.
func (s *shard) roomLocked() int { return s.capacity - s.queue.len() }

func (s *shard) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shard) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.len()
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
	b := s.m.newBuilder()
	deadline := time.NewTimer(s.m.deadline)
	defer deadline.Stop()

	launch, landed := make(chan *Request), make(chan attemptResult)
	var wire sync.WaitGroup
	wire.Go(func() {
		for req := range launch {
			landed <- s.m.attempt(ctx, req, 0)
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
		b = s.builder(b)
		f := ahead
		ahead = nil
		if f == nil {
			if f = s.prepare(b, least, nil); f == nil {
				return false
			}
		}
		if !s.ready(b, f) {
			s.done(f.batch) // every item grew too old while it waited
			return true
		}
		var first *attemptResult
		if f.built { // one request: its first attempt goes out from wire
			launch <- &f.req
			ahead = s.prepare(b, s.m.batchSize, f)
			r := <-landed
			first = &r
		}
		s.deliver(ctx, b, f, first)
		s.done(f.batch)
		resetTimer(deadline, s.m.deadline)
		return true
	}
	for ctx.Err() == nil {
		if send(s.m.batchSize) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-deadline.C:
			send(1)
			deadline.Reset(s.m.deadline)
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
func (s *shard) prepare(b requestBuilder, least int, busy *flight) *flight {
	batch := s.take(least)
	if batch == nil {
		return nil
	}
	f := &s.flights[0]
	if f == busy {
		f = &s.flights[1]
	}
	f.batch, f.built = batch, false
	if len(batch) <= s.m.sizes.current() {
		s.encode(b, f, batch)
		f.built = true
	}
	return f
}

// builder returns the builder of the shard's next request: b, or the RW1
// builder once the queue fell back to RW1.
func (s *shard) builder(b requestBuilder) requestBuilder {
	if s.rw1 == nil && s.m.opts.Protocol == RW2 && s.m.protocol() == RW1 {
		s.rw1 = &rw1Builder{tab: s.m.labels}
	}
	if s.rw1 != nil {
		return s.rw1
	}
	return b
}

// ready makes f right to send now, with b the shard's builder now. It
// removes the items that grew older than sample_age_limit while they
// waited (in the buffer, or built behind a request being retried), as
// upstream drops them when it builds a batch, and builds the request again
// when that removed some or it was built before the queue fell back to
// RW1; a request built before a 413 lowered the request size is not sent.
// It reports whether any item is left to send.
func (s *shard) ready(b requestBuilder, f *flight) bool {
	kept, removed := s.m.dropExpired(f.batch)
	f.batch = kept
	if len(kept) == 0 {
		return false
	}
	if f.built && len(kept) > s.m.sizes.current() {
		f.built = false // deliver sends it in parts
	}
	if f.built && (removed > 0 || f.req.Protocol != b.protocol()) {
		s.encode(b, f, kept)
	}
	return true
}

// take removes and returns the oldest batch if at least least items wait.
func (s *shard) take(least int) []item {
	s.mu.Lock()
	batch := s.queue.pop(least)
	s.mu.Unlock()
	if batch != nil {
		s.m.roomFreed()
	}
	return batch
}

// done hands a sent batch's memory back for reuse.
func (s *shard) done(batch []item) {
	s.mu.Lock()
	s.queue.recycle(batch)
	s.mu.Unlock()
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

// deliver sends f's batch until each of its items ended (accepted,
// refused for good or dropped) or ctx ends: as f's request when it is
// built (first is how its first attempt went, when it was made), or else in
// requests of the queue's request size, each built in turn into f.
//
// A request refused as too large (413) is not retried as it is: the queue
// lowers its request size (sizeLimit) and the rest of the batch goes in
// requests of that size, at most maxHalvings times per batch. Once that
// did not help, or when the refused request was too small for its size to
// be the reason (splittable), the rest of the batch is dropped, counted
// with reason too_large: an endpoint that refuses everything gets at most
// maxHalvings+1 requests per batch, and one once the learned size is small.
func (s *shard) deliver(ctx context.Context, b requestBuilder, f *flight, first *attemptResult) {
	rest, built, halvings := f.batch, f.built, 0
	// An attempt made already is accounted for even when ctx ended since:
	// a request the endpoint took is not sent again.
	for len(rest) > 0 && (ctx.Err() == nil || first != nil) {
		part := rest
		if !built {
			b = s.builder(b)
			part = rest[:min(len(rest), s.m.sizes.current())]
			s.encode(b, f, part)
		}
		built = false
		n := len(part)
		outcome, kept, err := s.complete(ctx, b, f, part, first)
		first = nil
		switch outcome {
		case aborted:
			return // its items stay pending
		case tooLarge:
		default:
			rest = rest[n:]
			continue
		}
		// Retries may have dropped items grown too old: kept is the front
		// of part. The rest of the batch is kept and what follows part.
		k := len(kept)
		old := rest
		rest = rest[n-k:]
		copy(rest, kept)
		clear(old[:n-k])
		split := splittable(kept, &f.req) // else its size is not the reason
		limit, lowered := s.m.sizes.current(), false
		if split {
			limit, lowered = s.m.sizes.refused(k)
		}
		if !split || halvings == maxHalvings {
			s.m.metrics.refused.WithLabelValues(strconv.Itoa(statusTooLarge)).Inc()
			s.m.logTooLarge(&f.req, limit, lowered, true, err)
			s.m.dropTooLarge(rest)
			return
		}
		halvings++
		s.m.logTooLarge(&f.req, limit, lowered, false, err)
	}
}

// complete sends f's request, built by b from batch, until the endpoint
// accepts it, refuses it for good, or ctx ends, and accounts for the
// batch (Manager.finish): the request is encoded once and retried as the
// same bytes. first is how its first attempt went when that was sent
// already, nil otherwise. It returns how the request ended and the batch
// then (without the items that grew too old while it was retried); a
// request refused as too large is not accounted for (deliver decides),
// and comes with the endpoint's answer. Once a batch ended, its items'
// extra parts (histogram copies, exemplars) are let go; their series
// references stay until the chunk is written again.
func (s *shard) complete(ctx context.Context, b requestBuilder, f *flight, batch []item, first *attemptResult) (sendOutcome, []item, error) {
	m := s.m
	req := &f.req
	// Before each retry, samples that have grown older than
	// sample_age_limit leave the batch (counted as dropped, too_old),
	// with the exemplars riding them; the rest is encoded again. Without
	// a limit every retry sends the same bytes.
	expire := func() bool {
		var removed int
		batch, removed = m.dropExpired(batch)
		if removed == 0 {
			return true
		}
		if len(batch) == 0 {
			req.Samples, req.Histograms, req.Exemplars = 0, 0, 0
			f.sum.reset()
			return false
		}
		s.encode(b, f, batch)
		return true
	}
	outcome, written, err := m.send(ctx, req, expire, first)
	if outcome == unsupported {
		// The endpoint speaks only RW1: the queue switches for good, and
		// this batch goes again as RW1.
		m.fallBackToRW1()
		b = s.builder(b)
		s.encode(b, f, batch)
		outcome, written, err = m.send(ctx, req, expire, nil)
		if outcome == unsupported {
			outcome = rejected
		}
	}
	switch outcome {
	case tooLarge:
		return outcome, batch, err
	case sent:
		if limit, back := m.sizes.accepted(len(batch)); back {
			m.log.Info("Remote endpoint accepts requests of max_samples_per_send again", "max_samples_per_send", limit)
		}
	}
	m.finish(batch, &f.sum, req, outcome, written)
	return outcome, batch, nil
}

// dropExpired removes from batch, in place, the items older than
// sample_age_limit, finishing them as dropped, and returns the rest and how
// many it removed.
func (m *Manager) dropExpired(batch []item) ([]item, int) {
	limit := time.Duration(m.opts.Config.SampleAgeLimit)
	if limit <= 0 {
		return batch, 0
	}
	oldest := m.opts.Now().Add(-limit).UnixMilli()
	kept := batch[:0]
	for _, it := range batch {
		if it.t < oldest {
			m.acks.done(it.seq, 1)
			m.metrics.dropped[it.kind.class()].tooOld.Inc()
			if it.extra != nil {
				for _, a := range it.extra.attached { // they cannot go without it
					m.acks.done(a.seq, 1)
					m.metrics.dropped[classExemplars].tooOld.Inc()
				}
			}
			continue
		}
		kept = append(kept, it)
	}
	removed := len(batch) - len(kept)
	clear(batch[len(kept):])
	return kept, removed
}

// encode builds and compresses the request body of batch into f's
// request, in b's protocol, and sets the request's counts and f's
// summary. A body the Sender said it may still read is left to it:
// this one gets new memory.
func (s *shard) encode(b requestBuilder, f *flight, batch []item) {
	if f.req.BodyInUse {
		f.body = snappyStream{}
	}
	f.req = Request{Protocol: b.protocol()}
	f.req.Body = b.build(batch, &f.sum, &f.body)
	f.req.Samples, f.req.Histograms, f.req.Exemplars = b.counts()
}

// sendOutcome is how a batch ended.
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
func (m *Manager) attempt(ctx context.Context, req *Request, n int) attemptResult {
	start := time.Now()
	written, err := m.opts.Sender.Send(ctx, req, n)
	took := time.Since(start).Seconds()
	m.metrics.sentBatchDuration.Observe(took)
	if err == nil {
		m.sendSeconds.observe(took)
		m.metrics.bytesSent.Add(float64(len(req.Body)))
	}
	return attemptResult{written: written, err: err}
}

// send sends req until it is accepted, refused, or ctx ends, and returns
// how it ended and what the endpoint said it wrote (RW2's written-count
// headers) on the last attempt; for tooLarge, the endpoint's answer too.
// first is how the first attempt went when it was made already, nil
// otherwise. Before each retry it calls beforeRetry, which may change req;
// when that returns false nothing is left to send.
func (m *Manager) send(ctx context.Context, req *Request, beforeRetry func() bool, first *attemptResult) (sendOutcome, Written, error) {
	for attempt := 0; ; attempt++ {
		var r attemptResult
		if attempt == 0 && first != nil {
			r = *first
		} else {
			r = m.attempt(ctx, req, attempt)
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
			m.refused(req, err)
			return rejected, written, nil
		}
		m.metrics.retried(req)
		delay := m.backoff(attempt, se.RetryAfter)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return aborted, Written{}, nil
		case <-t.C:
		}
		if !beforeRetry() {
			return expired, Written{}, nil
		}
	}
}
