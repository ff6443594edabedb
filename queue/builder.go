package queue

// This file builds requests: a batch of items in, the compressed body of
// one RW1 or RW2 request out, and what accounting needs of the batch
// besides, gathered in the same pass.

// requestBuilder turns a batch of items into the snappy-compressed
// protobuf body of one request, compressed by c, noting in sum what the
// shard needs to know of the batch besides (one pass over the items). The
// body is valid until c is used again; counts says what it carries.
type requestBuilder interface {
	build(batch []item, sum *batchSummary, c *snappyStream) []byte
	counts() (samples, histograms, exemplars int)
	protocol() Protocol // what the body is
}

// newBuilder returns a builder of requests in protocol p, with the
// series' labels read from tab, for the queue of lane.
func newBuilder(p Protocol, tab *labelTable, lane uint8) requestBuilder {
	if p == RW2 {
		b := newRW2Builder(tab)
		b.lane = lane
		return b
	}
	return &rw1Builder{tab: tab}
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
	rw1Encoder
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
		b.streamBlocks(c)
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
