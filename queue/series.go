package queue

import (
	"strings"
	"unsafe"
	"weak"

	"github.com/prometheus/common/model"
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
	source  uint64 // hash of the labels as the WAL has them
	data    *encodedSeries
	segment int32 // last segment (or checkpoint) the series was stored from
	state   seriesState
	held    bool // RW2 exemplars wait for its next sample (Manager.held)
}

// encodedSeries is a series' labels after external labels and relabelling,
// encoded once for requests. It is never changed after it is made (but for
// the RW2 refs the shard owning the series caches in rw2.refs): queued
// samples point to it while the cache may already have replaced it.
type encodedSeries struct {
	// rw1 holds the RW1 Label entries (RW1 queues only) as a string, whose
	// 16 bytes (a slice takes 24) keep encodedSeries in a 64-byte
	// allocation; encoders read it through rw1Bytes.
	rw1 string
	rw2 RW2Series // RW2 interned label ids (RW2 queues only)
}

// rw1Bytes returns d's RW1 label entries for encoders, which only read
// them (and copy them into requests).
func (d *encodedSeries) rw1Bytes() []byte {
	return unsafe.Slice(unsafe.StringData(d.rw1), len(d.rw1))
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
	scratch []byte // RW1 labels are encoded here, then copied at their size
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

// retiredSeries is an RW2 series encoding the cache no longer refers to,
// whose interned ids are released once nothing else does either.
//
// Why this is safe: an encodedSeries holds one count of each id it uses
// (its labels', help's and unit's). Queued items point to the
// encodedSeries they were queued with, and a shard reads the ids (and
// their strings) only through the items of the batch it encodes, which it
// holds while it does. So once the garbage collector has found the
// encodedSeries unreachable (its weak pointer reads nil), no item, batch
// or builder can reach it, nor read its ids through it again, and they
// can be released: an id whose count drops to zero is freed and may be
// given to another string. Ids the cache still uses (other series share
// names and values) keep their other counts. Exemplar strings are only
// looked up by value, never read through an id the encoder does not hold
// (see RW2Encoder.symbolString).
//
// The weak pointer costs one small allocation per retired series, made
// when it is forgotten, none while it is in use. sweep runs at each reset,
// so a churned series' strings are freed at the first reset after the
// garbage collector found its last queued item gone.
type retiredSeries struct {
	data       weak.Pointer[encodedSeries]
	labels     []uint32 // shared with the encoding, which never changes it
	help, unit uint32
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
			s.segment = max(s.segment, int32(segment))
			continue
		}
		c.forget(s)
		s.segment, s.source = int32(segment), hash
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
		// The labels themselves are not kept: their encodings are all
		// requests need (metadata finds the metric name in them).
		ls := c.builder.Labels()
		d := &encodedSeries{}
		if c.interner != nil {
			// RW2 queues keep the ids only; should the endpoint make the
			// queue fall back to RW1, labels are encoded from them per
			// request (see rw1Builder.labels).
			d.rw2 = NewRW2Series(c.interner, ls)
		} else {
			// Encoded in scratch and copied, the bytes take their size
			// (and not the capacity append grew them to).
			c.scratch = AppendRW1Labels(c.scratch[:0], ls)
			d.rw1 = string(c.scratch)
		}
		s.state, s.data = seriesKept, d
		c.kept++
		if c.names != nil {
			name := ls.Get(model.MetricNameLabel)
			if _, ok := c.names[name]; !ok {
				name = strings.Clone(name) // not the whole label set's string
			}
			c.names[name]++
		}
	}
}

// metricName returns the metric name of an encoded series, for RW1
// metadata, or "" when it has none.
func (c *seriesCache) metricName(d *encodedSeries) string {
	if c.interner == nil {
		return rw1LabelValue(d.rw1Bytes(), model.MetricNameLabel)
	}
	ids := d.rw2.Labels
	for i := 0; i+1 < len(ids); i += 2 {
		if c.interner.String(ids[i]) == model.MetricNameLabel {
			return c.interner.String(ids[i+1])
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
		c.retire(s.data)
	case seriesDropped:
		c.dropped--
	}
	*s = series{}
}

// retire hands an encoding the cache no longer refers to over to sweep.
func (c *seriesCache) retire(d *encodedSeries) {
	if c.interner == nil {
		return
	}
	c.retired = append(c.retired, retiredSeries{data: weak.Make(d), labels: d.rw2.Labels, help: d.rw2.Help, unit: d.rw2.Unit})
}

// sweep releases the interned ids of the retired encodings that nothing
// refers to any more (see retiredSeries).
func (c *seriesCache) sweep() {
	kept := c.retired[:0]
	for _, r := range c.retired {
		if r.data.Value() != nil {
			kept = append(kept, r)
			continue
		}
		c.interner.Release(r.labels...)
		c.interner.Release(r.help, r.unit)
	}
	clear(c.retired[len(kept):])
	c.retired = kept
}

// reset forgets the series last stored from a segment below the given one:
// the log no longer holds them. It also releases the interned strings of
// series forgotten before whose encodings are now unreachable.
func (c *seriesCache) reset(segment int) {
	if c.interner != nil {
		c.sweep()
	}
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
func (c *seriesCache) setMetadata(meta []record.RefMetadata) {
	if c.interner == nil {
		return
	}
	for _, md := range meta {
		s := c.get(md.Ref)
		if s == nil || s.state != seriesKept {
			continue
		}
		old := &s.data.rw2
		// A new series, not a copy: a shard may be writing old's cached
		// refs (RW2Series.refs) now.
		rw2 := RW2Series{Labels: old.Labels}
		rw2.SetMetadata(c.interner, md.Type.String(), md.Help, md.Unit) // holds help and unit
		if rw2.Type == old.Type && rw2.Help == old.Help && rw2.Unit == old.Unit {
			c.interner.Release(rw2.Help, rw2.Unit)
			continue
		}
		// The new encoding holds its own count of the label ids; the old
		// one keeps its counts until sweep finds it unreachable.
		c.interner.Acquire(rw2.Labels...)
		d := &encodedSeries{rw1: s.data.rw1, rw2: rw2}
		c.retire(s.data)
		s.data = d
	}
}
