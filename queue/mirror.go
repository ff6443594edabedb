package queue

import (
	"iter"
	"math/bits"

	"github.com/walship/walship/wal/record"
)

// This file lets the series cache of one lane mirror another's: a series
// that neither lane's relabelling changes costs the second lane one bit,
// not an entry of its own.

// mirroring is a series cache's part in sharing series with the other
// caches one watcher feeds (see seriesCache.storeAfter). A cache follows
// the cache given each record just before it (its mirror): the refs in
// refs are series the mirror holds kept and plain, as this cache would
// hold them, and this cache has no entry of its own for them. The mirror,
// once followed, logs the kept, plain series each of its calls forgets, so
// that its followers, called just after with it, forget them too.
type mirroring struct {
	mirror *seriesCache // the cache this one follows; nil for none
	refs   refBits      // refs whose series are mirror's
	seen   uint64       // the mirror's call whose forgetting this cache took over

	followed  bool              // another cache mirrors this one: log what it forgets
	named     bool              // and counts metric names: log them too
	call      uint64            // counts this cache's calls that forget (store, reset)
	forgotten []forgottenSeries // the kept, plain series the last such call forgot
}

// forgottenSeries is a series a mirrored cache forgot, with its metric
// name when a follower counts names (RW1 metadata). Not its encoding:
// holding it would keep its labels from being released.
type forgottenSeries struct {
	ref  record.Ref
	name string
}

// maxForgottenKept bounds the room the log keeps for the next call: the log
// of a checkpoint that forgot a million series is dropped at the next call,
// not reused for good.
const maxForgottenKept = 1 << 12

// beginCall starts a call of the cache that may forget series: its log is
// of this call only.
func (c *seriesCache) beginCall() {
	m := &c.mirrors
	if !m.followed {
		return
	}
	m.call++
	if cap(m.forgotten) > maxForgottenKept {
		m.forgotten = nil
		return
	}
	clear(m.forgotten)
	m.forgotten = m.forgotten[:0]
}

// logForgotten records that the cache forgets s, the series of ref, for
// its followers.
func (c *seriesCache) logForgotten(ref record.Ref, s *series) {
	m := &c.mirrors
	if !m.followed || s.state != seriesKept || !s.plain {
		return
	}
	f := forgottenSeries{ref: ref}
	if m.named {
		f.name = c.metricName(s.data)
	}
	m.forgotten = append(m.forgotten, f)
}

// follow makes first, given the same call just before, the cache to
// mirror and forgets the mirrored series first forgot in that call. It
// returns first, or nil when the cache cannot share first's encodings;
// with another mirror before, its series become the cache's own.
func (c *seriesCache) follow(first *seriesCache) *seriesCache {
	if !c.sharesWith(first) {
		first = nil
	}
	m := &c.mirrors
	if m.mirror != first {
		c.unmirror()
		m.mirror, m.seen = first, 0
	}
	if first == nil || m.seen == first.mirrors.call {
		return first
	}
	m.seen = first.mirrors.call
	for _, f := range first.mirrors.forgotten {
		if m.refs.has(f.ref) {
			m.refs.remove(f.ref)
			c.forgetKept(f.name)
		}
	}
	return first
}

// mirrorOf makes the series of ref first's, when first holds it kept,
// plain and hashed to source, and reports whether it did.
func (c *seriesCache) mirrorOf(first *seriesCache, ref record.Ref, source uint64) bool {
	if first == nil || !first.series.paged(ref) || first.plainKept(ref, source) == nil {
		return false // beyond first's pages: the bits would be as far
	}
	c.mirrors.refs.add(ref)
	first.mirrors.followed = true
	first.mirrors.named = first.mirrors.named || c.names != nil
	return true
}

// mirrored returns the series of ref when it is the mirror's; nil
// otherwise.
func (c *seriesCache) mirrored(ref record.Ref) *series {
	if m := &c.mirrors; m.mirror != nil && m.refs.has(ref) {
		if s := m.mirror.series.at(ref); s != nil && s.state == seriesKept { // else first was called without this cache
			return s
		}
	}
	return nil
}

// own returns the cache's own entry of ref, taking over the mirror's entry
// first when the series is mirrored: for what the queue changes on it
// (held); nil when the series is unknown.
func (c *seriesCache) own(ref record.Ref) *series {
	if f := c.mirrored(ref); f != nil {
		c.mirrors.refs.remove(ref)
		s := c.series.slot(ref)
		*s = series{source: f.source, data: f.data, segment: f.segment, state: seriesKept, plain: true, shared: true}
		return s
	}
	if s := c.series.at(ref); s != nil && s.state != seriesUnknown {
		return s
	}
	return nil
}

// unmirror makes every mirrored series the cache's own (sharing the
// mirror's encoding), and stops following the mirror.
func (c *seriesCache) unmirror() {
	m := &c.mirrors
	if m.mirror != nil {
		for ref := range m.refs.all() {
			if c.own(ref) == nil {
				c.kept-- // forgotten by first in a call without this cache (not done)
			}
		}
	}
	m.refs, m.mirror = refBits{}, nil
}

// refBits is a set of series refs, in pages as the series table's: a page
// of refs none of which is in the set costs nothing once trimmed.
type refBits struct {
	pages pageDir[refBitsPage]
}

type refBitsPage [1 << seriesPageBits / 64]uint64

func (b *refBits) has(ref record.Ref) bool {
	if page := b.pages.of(ref); page != nil {
		i := inPage(ref)
		return page[i/64]&(1<<(i%64)) != 0
	}
	return false
}

// add puts ref in the set; ref is within a series table's pages.
func (b *refBits) add(ref record.Ref) {
	i := inPage(ref)
	b.pages.make(ref)[i/64] |= 1 << (i % 64)
}

func (b *refBits) remove(ref record.Ref) {
	if page := b.pages.of(ref); page != nil {
		i := inPage(ref)
		page[i/64] &^= 1 << (i % 64)
	}
}

// all yields the refs in the set, in order.
func (b *refBits) all() iter.Seq[record.Ref] {
	return func(yield func(record.Ref) bool) {
		for p, page := range b.pages {
			if page == nil {
				continue
			}
			for w, word := range page {
				for word != 0 {
					i := bits.TrailingZeros64(word)
					word &^= 1 << i
					if !yield(record.Ref(p<<seriesPageBits | w*64 | i)) {
						return
					}
				}
			}
		}
	}
}

// trim frees the pages without a ref in the set.
func (b *refBits) trim() {
	b.pages.trim(func(page *refBitsPage) bool { return *page == refBitsPage{} })
}
