package queue

import (
	"strings"
	"weak"
)

// This file retires a series cache's encodings and releases their labels
// once nothing refers to them any more.

// retiredSeries is a series encoding the cache no longer refers to,
// whose labels are released once nothing else does either.
//
// Why this is safe: an encodedSeries holds one count of each label of its
// set (and of its help and unit strings). Queued items point to the
// encodedSeries they were queued with, and a shard reads the labels (and
// their strings) only through the items of the batch it encodes, which it
// holds while it does. So once the garbage collector has found the
// encodedSeries unreachable (its weak pointer reads nil), no item, batch
// or builder can reach it, nor read its labels through it again, and they
// can be released: a label whose count drops to zero is freed and its id
// may be given to another label. Labels the cache still uses (other series
// share them) keep their other counts. Exemplar strings are only looked up
// by value, never read through an id the encoder does not hold (see
// rw2Encoder.symbolString).
//
// The weak pointer costs one small allocation per retired series, made
// when it is forgotten, none while it is in use. sweep runs at each reset,
// so a churned series' labels are freed at the first reset after the
// garbage collector found its last queued item gone.
type retiredSeries struct {
	data weak.Pointer[encodedSeries]
	set  labelSet // a copy of the encoding's
}

// retire hands an encoding the cache no longer refers to over to sweep.
// The set is copied: when it lives in the encoding's own memory, holding
// it would keep the encoding reachable for good.
func (c *seriesCache) retire(d *encodedSeries) {
	c.retired = append(c.retired, retiredSeries{data: weak.Make(d), set: labelSet(strings.Clone(string(d.set)))})
}

// sweep releases the labels of the retired encodings that nothing refers
// to any more (see retiredSeries).
func (c *seriesCache) sweep() {
	c.table.sweepOrphans()
	c.sweepOwn()
}

// sweepOwn releases the labels of the cache's own retired encodings that
// nothing refers to any more.
func (c *seriesCache) sweepOwn() {
	kept := c.retired[:0]
	for _, r := range c.retired {
		if r.data.Value() != nil {
			kept = append(kept, r)
			continue
		}
		c.table.release(r.set)
	}
	clear(c.retired[len(kept):])
	c.retired = kept
}

// discard hands the cache over to its table, once its queue is done and
// nothing feeds it any more: the next sweep of another cache of the table
// retires the encodings it made (forgetAll), and a later one releases
// their labels once neither a queued item nor another cache (a lane
// sharing them) refers to them. Without it the labels of a stopped queue
// (a reload, a lane that left) were never released. It costs nothing
// until then, so a process that exits pays nothing.
func (c *seriesCache) discard() { c.table.adopt(c) }
