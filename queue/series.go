package queue

import (
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/walship/walship/wal/record"
)

// seriesState says what the queue knows of a series ref.
type seriesState uint8

const (
	seriesUnknown seriesState = iota // never stored, or forgotten
	seriesKept                       // sent: labels encoded
	seriesDropped                    // dropped by write_relabel_configs
)

// series is what the queue keeps per series ref.
type series struct {
	state   seriesState
	segment int    // last segment (or checkpoint) the series was stored from
	source  uint64 // hash of the labels as the WAL has them
	data    *encodedSeries
}

// encodedSeries is a series' labels after external labels and relabelling,
// encoded once for requests. It is never changed after it is made: queued
// samples point to it while the cache may already have replaced it.
type encodedSeries struct {
	labels labels.Labels
	rw1    []byte    // RW1 Label entries
	rw2    RW2Series // RW2 interned label ids (RW2 queues only)
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
	interner *Interner // non-nil for RW2 queues

	builder labels.Builder
	dense   []series
	sparse  map[record.Ref]*series
	kept    int
	dropped int
}

// maxDenseGap bounds how far beyond the slice a ref may be and still grow
// it, so that one huge ref does not allocate a huge slice.
const maxDenseGap = 1 << 16

// newSeriesCache returns a cache whose series are encoded for RW1, and for
// RW2 too when interner is not nil (so that an RW2 queue can fall back to
// RW1 without re-encoding).
func newSeriesCache(external labels.Labels, relabelConfigs []*relabel.Config, interner *Interner) *seriesCache {
	c := &seriesCache{relabel: relabelConfigs, interner: interner, sparse: map[record.Ref]*series{}}
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
// applied, and the result encoded. A series stored again with the same
// labels (a checkpoint repeats them) only has its segment updated.
func (c *seriesCache) store(in []record.RefSeries, segment int) {
	for _, rs := range in {
		s := c.slot(rs.Ref)
		hash := rs.Labels.Hash()
		if s.state != seriesUnknown && s.source == hash {
			s.segment = max(s.segment, segment)
			continue
		}
		c.forget(s)
		s.segment, s.source = segment, hash
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
		d := &encodedSeries{labels: c.builder.Labels()}
		d.rw1 = AppendRW1Labels(nil, d.labels)
		if c.interner != nil {
			d.rw2 = NewRW2Series(c.interner, d.labels)
		}
		s.state, s.data = seriesKept, d
		c.kept++
	}
}

// forget clears an entry, keeping the counts right.
func (c *seriesCache) forget(s *series) {
	switch s.state {
	case seriesKept:
		c.kept--
	case seriesDropped:
		c.dropped--
	}
	*s = series{}
}

// reset forgets the series last stored from a segment below the given one:
// the log no longer holds them.
func (c *seriesCache) reset(segment int) {
	for i := range c.dense {
		if s := &c.dense[i]; s.state != seriesUnknown && s.segment < segment {
			c.forget(s)
		}
	}
	for ref, s := range c.sparse {
		if s.segment < segment {
			c.forget(s)
			delete(c.sparse, ref)
		}
	}
}

// setMetadata records metadata of kept series, for RW2 requests (each
// series carries its type, help and unit). The series' encoding is
// replaced, not changed: queued samples keep the one they were queued with.
func (c *seriesCache) setMetadata(meta []record.RefMetadata) {
	if c.interner == nil {
		return
	}
	for _, md := range meta {
		s := c.get(md.Ref)
		if s == nil || s.state != seriesKept {
			continue
		}
		d := *s.data
		d.rw2.SetMetadata(c.interner, md.Type.String(), md.Help, md.Unit)
		old := s.data.rw2
		if d.rw2.Type != old.Type || d.rw2.Help != old.Help || d.rw2.Unit != old.Unit {
			s.data = &d
		}
	}
}
