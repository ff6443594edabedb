package queue

import (
	"slices"
	"strings"
	"unsafe"
	"weak"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/walship/walship/wal/record"
)

// This file is the series cache: for each series ref of the WAL, its
// labels as the queue sends them (external labels added, relabelled,
// interned) or that it was dropped, and the segment it was last stored
// from, so that a checkpoint's SeriesReset forgets what the WAL forgot.

// seriesState says what the queue knows of a series ref.
type seriesState uint8

const (
	seriesUnknown seriesState = iota // never stored, or forgotten
	seriesKept                       // sent: labels encoded
	seriesDropped                    // dropped by write_relabel_configs
)

// series is what the queue keeps per series ref.
type series struct {
	source  uint64 // hash of the labels as the WAL has them
	data    *encodedSeries
	segment int32 // last segment (or checkpoint) the series was stored from
	state   seriesState
	held    bool // RW2 exemplars wait for its next sample (intake.held)
	plain   bool // its labels are the WAL's with the external labels: relabelling changed nothing
	shared  bool // data is another queue's (see seriesCache.storeAfter): not retired here
}

// encodedSeries is a series' labels after external labels and relabelling,
// interned once for requests of either protocol (see labelTable), with its
// RW2 metadata. It is never changed after it is made (but for the RW2 refs
// the shard owning the series caches in refs): queued samples point to it
// while the cache may already have replaced it. The queues one watcher
// feeds share it where their relabelling leaves the series as it is.
type encodedSeries struct {
	set labelSet // in inline when it fits: one allocation, one cache miss

	// refs caches the series' RW2 labels_refs under an encoder's carried
	// symbol table. Only that encoder writes it, and only an encoder of
	// the queue that made the series (lane) reads it: a series must not
	// be added by two encoders at once.
	refs *rw2Refs

	inline [23]byte
	lane   uint8 // the queue that made it (Options.Lane)
}

// newEncodedSeries returns the encoding of a series whose label set is set
// (copied).
func newEncodedSeries(set []byte, lane uint8) *encodedSeries {
	d := &encodedSeries{lane: lane}
	if len(set) <= len(d.inline) {
		d.set = labelSet(unsafe.String(&d.inline[0], copy(d.inline[:], set)))
	} else {
		d.set = labelSet(set)
	}
	return d
}

// seriesCache maps series refs to their series. Prometheus hands out refs
// densely from 1, so most live in a slice indexed by ref, which costs one
// bounds check per lookup instead of a hash; refs far beyond it go to a map.
//
// It is owned by the goroutine that feeds the queue (the watcher's): not
// safe for concurrent use.
type seriesCache struct {
	external []labels.Label
	relabel  []*relabel.Config
	table    *labelTable
	adding   addContext     // the table's memory of this cache's last series
	metadata bool           // series carry their metadata (RW2 queues)
	lane     uint8          // tags the encodings it makes (Options.Lane)
	expect   []labels.Label // scratch of unchanged

	builder labels.Builder
	retired []retiredSeries
	dense   []series
	sparse  map[record.Ref]*series
	kept    int
	dropped int

	// names counts the kept series of each metric name when RW1 metadata
	// is sent (nil otherwise); gone collects the names whose last series
	// was forgotten, for the queue to stop sending their metadata.
	names map[string]int
	gone  []string
}

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

// maxDenseGap bounds how far beyond the slice a ref may be and still grow
// it, so that one huge ref does not allocate a huge slice.
const maxDenseGap = 1 << 16

// newSeriesCache returns a cache whose series' labels are interned in
// table; with metadata, series carry the WAL's metadata (RW2).
func newSeriesCache(external labels.Labels, relabelConfigs []*relabel.Config, table *labelTable, metadata bool) *seriesCache {
	c := &seriesCache{relabel: relabelConfigs, table: table, metadata: metadata, sparse: map[record.Ref]*series{}}
	external.Range(func(l labels.Label) { c.external = append(c.external, l) })
	return c
}

// slot returns the entry for ref, creating room for it.
func (c *seriesCache) slot(ref record.Ref) *series {
	if int(ref) < len(c.dense) {
		return &c.dense[ref]
	}
	if uint64(ref) < uint64(2*len(c.dense)+maxDenseGap) {
		n := max(int(ref)+1, 2*len(c.dense))
		grown := make([]series, n)
		copy(grown, c.dense)
		c.dense = grown
		return &c.dense[ref]
	}
	s, ok := c.sparse[ref]
	if !ok {
		s = &series{}
		c.sparse[ref] = s
	}
	return s
}

// get returns the series of ref, or nil when it is unknown.
func (c *seriesCache) get(ref record.Ref) *series {
	if int(ref) < len(c.dense) {
		if s := &c.dense[ref]; s.state != seriesUnknown {
			return s
		}
		return nil
	}
	if s, ok := c.sparse[ref]; ok && s.state != seriesUnknown {
		return s
	}
	return nil
}

// store adds or refreshes series found in the given segment: external
// labels are added where the series lacks them, write_relabel_configs
// applied, and the result interned. A series stored again with the same
// labels (a checkpoint repeats them) only has its segment updated. The
// label sets in are not kept: the WAL reader may reuse their memory.
func (c *seriesCache) store(in []record.RefSeries, segment int) { c.storeAfter(in, segment, nil) }

// storeAfter stores as store does. first, when not nil, is the cache of
// another queue fed by the same watcher that was given in just before
// (see sharesWith). A series that both leave as the WAL has it (plain)
// then holds first's encoding instead of one of its own: each queue of a
// watcher with other write_relabel_configs costs a slot per series, not
// the series again.
func (c *seriesCache) storeAfter(in []record.RefSeries, segment int, first *seriesCache) {
	if !c.sharesWith(first) {
		first = nil
	}
	for _, rs := range in {
		s := c.slot(rs.Ref)
		hash := rs.Labels.Hash()
		if s.state != seriesUnknown && s.source == hash {
			s.segment = max(s.segment, int32(segment))
			continue
		}
		c.forget(s)
		s.segment, s.source, s.plain = int32(segment), hash, true
		ls := rs.Labels
		if len(c.external) > 0 || len(c.relabel) > 0 {
			c.builder.Reset(rs.Labels)
			for _, l := range c.external {
				if c.builder.Get(l.Name) == "" {
					c.builder.Set(l.Name, l.Value)
				}
			}
			if !relabel.ProcessBuilder(&c.builder, c.relabel...) {
				s.state = seriesDropped
				c.dropped++
				continue
			}
			ls = c.builder.Labels()
			s.plain = len(c.relabel) == 0 || c.unchanged(rs.Labels, ls)
		}
		s.state = seriesKept
		if f := first.plainKept(rs.Ref, hash); s.plain && f != nil {
			s.data, s.shared = f.data, true
		} else {
			s.data = newEncodedSeries(c.table.add(ls, &c.adding), c.lane)
		}
		c.kept++
		if c.names != nil {
			name := ls.Get(model.MetricNameLabel)
			if _, ok := c.names[name]; !ok {
				name = strings.Clone(name) // not the label set's memory
			}
			c.names[name]++
		}
	}
}

// sharesWith reports whether the cache may hold first's encodings: first is
// another cache of the same table whose series carry metadata as its own
// do and get the same external labels.
func (c *seriesCache) sharesWith(first *seriesCache) bool {
	return first != nil && first != c && first.table == c.table && first.metadata == c.metadata &&
		slices.Equal(first.external, c.external)
}

// plainKept returns the series of ref when it is kept, plain and has the
// labels hashed to source; nil otherwise, or when c is nil.
func (c *seriesCache) plainKept(ref record.Ref, source uint64) *series {
	if c == nil {
		return nil
	}
	if f := c.get(ref); f != nil && f.state == seriesKept && f.plain && f.source == source {
		return f
	}
	return nil
}

// unchanged reports whether ls, a series' labels after relabelling, are
// its labels in the WAL (orig) with the external labels it lacks added.
func (c *seriesCache) unchanged(orig, ls labels.Labels) bool {
	if len(c.external) == 0 {
		return labels.Equal(orig, ls)
	}
	want := c.expect[:0]
	ext := c.external // sorted by name, as orig is
	orig.Range(func(l labels.Label) {
		for len(ext) > 0 && ext[0].Name < l.Name {
			want, ext = append(want, ext[0]), ext[1:]
		}
		if len(ext) > 0 && ext[0].Name == l.Name {
			ext = ext[1:] // the series has it: not added
		}
		want = append(want, l)
	})
	want = append(want, ext...)
	c.expect = want
	if ls.Len() != len(want) {
		return false
	}
	i, same := 0, true
	ls.Range(func(l labels.Label) {
		same = same && l == want[i]
		i++
	})
	return same
}

// metricName returns the metric name of an encoded series, for RW1
// metadata, or "" when it has none.
func (c *seriesCache) metricName(d *encodedSeries) string {
	for name, value := range d.set.reader().labels(c.table.snapshot()) {
		if c.table.strings.String(name) == model.MetricNameLabel {
			return c.table.strings.String(value)
		}
	}
	return ""
}

// forget clears an entry, keeping the counts right and retiring its
// encoding.
func (c *seriesCache) forget(s *series) {
	switch s.state {
	case seriesKept:
		c.kept--
		if c.names != nil {
			name := c.metricName(s.data)
			if c.names[name]--; c.names[name] <= 0 {
				delete(c.names, name)
				c.gone = append(c.gone, name)
			}
		}
		if !s.shared {
			c.retire(s.data)
		}
	case seriesDropped:
		c.dropped--
	}
	*s = series{}
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

// forgetAll forgets every series, retiring the encodings the cache made.
func (c *seriesCache) forgetAll() {
	for i := range c.dense {
		c.forget(&c.dense[i])
	}
	c.dense = nil
	for ref, s := range c.sparse {
		c.forget(s)
		delete(c.sparse, ref)
	}
}

// reset forgets the series last stored from a segment below the given one:
// the log no longer holds them. It also releases the labels of series
// forgotten before whose encodings are now unreachable.
func (c *seriesCache) reset(segment int) {
	c.sweep()
	for i := range c.dense {
		if s := &c.dense[i]; s.state != seriesUnknown && int(s.segment) < segment {
			c.forget(s)
		}
	}
	for ref, s := range c.sparse {
		if int(s.segment) < segment {
			c.forget(s)
			delete(c.sparse, ref)
		}
	}
}

// setMetadata records metadata of kept series, for RW2 requests (each
// series carries its type, help and unit). The series' encoding is
// replaced, not changed: queued samples keep the one they were queued with.
func (c *seriesCache) setMetadata(meta []record.RefMetadata) { c.setMetadataAfter(meta, nil) }

// setMetadataAfter records metadata as setMetadata does. A series holding
// first's encoding (see storeAfter) takes first's new one: first was
// given the metadata just before.
func (c *seriesCache) setMetadataAfter(meta []record.RefMetadata, first *seriesCache) {
	if !c.metadata {
		return
	}
	if !c.sharesWith(first) {
		first = nil
	}
	for _, md := range meta {
		s := c.get(md.Ref)
		if s == nil || s.state != seriesKept {
			continue
		}
		if s.shared {
			if f := first.plainKept(md.Ref, s.source); f != nil {
				s.data = f.data
				continue
			}
		}
		typ := uint8(writev2.FromMetadataType(model.MetricType(md.Type.String())))
		if t, help, unit, _ := s.data.set.metadata(); t == typ && c.table.strings.String(help) == md.Help && c.table.strings.String(unit) == md.Unit {
			continue
		}
		// The new encoding holds its own count of the labels; the old one
		// keeps its counts until sweep finds it unreachable.
		d := newEncodedSeries(c.table.withMetadata(s.data.set, typ, md.Help, md.Unit), c.lane)
		if !s.shared {
			c.retire(s.data)
		}
		s.data, s.shared = d, false
	}
}
