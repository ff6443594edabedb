package queue

import (
	"slices"
	"strings"
	"unsafe"

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

// seriesCache maps series refs to their series (in a seriesTable), and
// keeps what their labels cost counted.
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
	series  seriesTable // by ref (seriestable.go)
	mirrors mirroring   // series held by another lane's cache (mirror.go)
	kept    int         // kept series, the mirrored ones included
	dropped int

	// names counts the kept series of each metric name when RW1 metadata
	// is sent (nil otherwise); gone collects the names whose last series
	// was forgotten, for the queue to stop sending their metadata.
	names map[string]int
	gone  []string
}

// newSeriesCache returns a cache whose series' labels are interned in
// table; with metadata, series carry the WAL's metadata (RW2).
func newSeriesCache(external labels.Labels, relabelConfigs []*relabel.Config, table *labelTable, metadata bool) *seriesCache {
	c := &seriesCache{relabel: relabelConfigs, table: table, metadata: metadata}
	external.Range(func(l labels.Label) { c.external = append(c.external, l) })
	return c
}

// get returns the series of ref, its own or the mirror's, or nil when it
// is unknown. A mirrored series must not be changed through it (see own).
func (c *seriesCache) get(ref record.Ref) *series {
	s, _ := c.lookup(ref)
	return s
}

// lookup returns what get does, and whether the series is the mirror's.
func (c *seriesCache) lookup(ref record.Ref) (s *series, mirrored bool) {
	if c.mirrors.mirror != nil { // first: a mirrored ref has no entry of its own
		if s := c.mirrored(ref); s != nil {
			return s, true
		}
	}
	if s := c.series.at(ref); s != nil && s.state != seriesUnknown {
		return s, false
	}
	return nil, false
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
// is then first's: the cache mirrors it (mirror.go), with one bit instead
// of an entry and an encoding of its own. Each queue of a watcher with
// other write_relabel_configs then costs what its relabelling changes,
// not the series again.
func (c *seriesCache) storeAfter(in []record.RefSeries, segment int, first *seriesCache) {
	c.beginCall()
	first = c.follow(first)
	for _, rs := range in {
		if c.mirrored(rs.Ref) != nil {
			continue // first stored the same series again: a new one would have been forgotten
		}
		hash := rs.Labels.Hash()
		s := c.series.at(rs.Ref)
		if s != nil && s.state != seriesUnknown && s.source == hash {
			s.segment = max(s.segment, int32(segment))
			continue
		}
		if s != nil {
			c.forget(rs.Ref, s)
		}
		ls, plain, kept := c.relabelled(rs.Labels)
		if kept && plain && c.mirrorOf(first, rs.Ref, hash) {
			c.countKept(ls)
			continue
		}
		s = c.series.slot(rs.Ref)
		s.segment, s.source, s.plain = int32(segment), hash, plain
		if !kept {
			s.state = seriesDropped
			c.dropped++
			continue
		}
		s.state = seriesKept
		if f := first.plainKept(rs.Ref, hash); plain && f != nil { // beyond the mirror's bits
			s.data, s.shared = f.data, true
		} else {
			s.data = newEncodedSeries(c.table.add(ls, &c.adding), c.lane)
		}
		c.countKept(ls)
	}
}

// relabelled returns the labels the queue sends for a series the WAL has
// with lset: the external labels it lacks added, write_relabel_configs
// applied. plain says they are lset with the external labels; kept is
// false when relabelling drops the series.
func (c *seriesCache) relabelled(lset labels.Labels) (ls labels.Labels, plain, kept bool) {
	if len(c.external) == 0 && len(c.relabel) == 0 {
		return lset, true, true
	}
	c.builder.Reset(lset)
	for _, l := range c.external {
		if c.builder.Get(l.Name) == "" {
			c.builder.Set(l.Name, l.Value)
		}
	}
	if !relabel.ProcessBuilder(&c.builder, c.relabel...) {
		return labels.EmptyLabels(), false, false
	}
	ls = c.builder.Labels()
	return ls, len(c.relabel) == 0 || c.unchanged(lset, ls), true
}

// countKept counts a kept series with labels ls.
func (c *seriesCache) countKept(ls labels.Labels) {
	c.kept++
	if c.names != nil {
		name := ls.Get(model.MetricNameLabel)
		if _, ok := c.names[name]; !ok {
			name = strings.Clone(name) // not the label set's memory
		}
		c.names[name]++
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
	if f := c.series.at(ref); f != nil && f.state == seriesKept && f.plain && f.source == source {
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

// countedName returns the metric name of d when names are counted, ""
// otherwise.
func (c *seriesCache) countedName(d *encodedSeries) string {
	if c.names == nil {
		return ""
	}
	return c.metricName(d)
}

// forget clears the entry of ref, keeping the counts right and retiring
// its encoding.
func (c *seriesCache) forget(ref record.Ref, s *series) {
	c.logForgotten(ref, s)
	switch s.state {
	case seriesKept:
		c.forgetKept(c.countedName(s.data))
		if !s.shared {
			c.retire(s.data)
		}
	case seriesDropped:
		c.dropped--
	}
	*s = series{}
}

// forgetKept uncounts a kept series of the given metric name (read only
// when names are counted).
func (c *seriesCache) forgetKept(name string) {
	c.kept--
	if c.names != nil {
		if c.names[name]--; c.names[name] <= 0 {
			delete(c.names, name)
			c.gone = append(c.gone, name)
		}
	}
}

// forgetAll forgets every series, retiring the encodings the cache made.
// The mirrored ones are only let go: the mirror may be gone already.
func (c *seriesCache) forgetAll() {
	c.retired = slices.Grow(c.retired, c.kept) // once, not doubling: a whole cache retires at once
	for range c.mirrors.refs.all() {
		c.kept--
	}
	c.mirrors = mirroring{}
	for ref, s := range c.series.all() {
		c.forget(ref, s)
	}
	c.series = seriesTable{}
}

// reset forgets the series last stored from a segment below the given one:
// the log no longer holds them. It also releases the labels of series
// forgotten before whose encodings are now unreachable.
func (c *seriesCache) reset(segment int) { c.resetAfter(segment, nil) }

// resetAfter resets as reset does. first, when not nil, is the cache of
// another queue fed by the same watcher that was reset just before (see
// storeAfter): the mirrored series it forgot are forgotten too.
func (c *seriesCache) resetAfter(segment int, first *seriesCache) {
	c.beginCall()
	c.follow(first)
	c.sweep()
	for ref, s := range c.series.all() {
		if s.state != seriesUnknown && int(s.segment) < segment {
			c.forget(ref, s)
		}
	}
	c.series.trim()
	c.mirrors.refs.trim()
}

// setMetadata records metadata of kept series, for RW2 requests (each
// series carries its type, help and unit). The series' encoding is
// replaced, not changed: queued samples keep the one they were queued with.
func (c *seriesCache) setMetadata(meta []record.RefMetadata) { c.setMetadataAfter(meta, nil) }

// setMetadataAfter records metadata as setMetadata does. A series of
// first's (see storeAfter), mirrored or holding its encoding, takes
// first's new one: first was given the metadata just before.
func (c *seriesCache) setMetadataAfter(meta []record.RefMetadata, first *seriesCache) {
	if !c.metadata {
		return
	}
	first = c.follow(first)
	for _, md := range meta {
		s := c.series.at(md.Ref) // not a mirrored series: first took the metadata
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
