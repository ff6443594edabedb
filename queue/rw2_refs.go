package queue

import (
	"sync/atomic"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// This file is the labels_refs, with the metadata field, that a series
// keeps under a carried RW2 symbol table (see rw2_symbols.go), so that its
// later entries under the table copy them instead of mapping its labels
// again.

// rw2Refs is a series' encoded labels_refs and metadata fields, with its
// metadata, valid in the carried symbol table numbered epoch. Only the
// encoder of the shard owning the series writes it.
type rw2Refs struct {
	epoch      uint64
	typ        writev2.Metadata_MetricType
	help, unit uint32
	meta       int32  // where the metadata field starts
	fields     []byte // the labels_refs field (tag, length, refs), then the metadata field
}

// appendSample appends a TimeSeries entry of one sample of the series
// whose fields r holds: what AddSample writes, with lengths known ahead.
func (r *rw2Refs) appendSample(b []byte, t int64, v float64, st int64) []byte {
	ss := pbDoubleFieldSize(v) + pbInt64FieldSize(t) + pbInt64FieldSize(st) // at most 31
	b = append(b, rw2TagTimeSeries)
	b = pbAppendVarint(b, uint64(len(r.fields)+2+ss))
	b = append(b, r.fields[:r.meta]...)
	b = append(b, rw2TagSamples, byte(ss))
	b = pbAppendDouble(b, rw2TagSampleValue, v)
	b = pbAppendInt64(b, rw2TagSampleTimestamp, t)
	b = pbAppendInt64(b, rw2TagSampleStart, st)
	return append(b, r.fields[r.meta:]...)
}

// rw2Epochs numbers carried symbol tables process-wide, so that a series'
// cached refs can only match the table they were written for.
var rw2Epochs atomic.Uint64

// cached returns the fields d cached under the current carried table, or
// nil. An encoding another queue made (shared, see seriesCache.storeAfter) is
// that queue's to cache refs in: its d.refs is not even read.
func (e *rw2Encoder) cached(d *encodedSeries) *rw2Refs {
	if d.lane != e.lane {
		return nil
	}
	if r := d.refs; r != nil && e.carried && r.epoch == e.epoch && r.fields != nil {
		return r
	}
	return nil
}

// cacheRefs keeps the labels_refs field of d, its metadata field and its
// metadata, for its next sample under the carried table; the first time
// d is seen under the table, it is only marked (e.seen): the series of a
// large queue may not come back before the table ends, and their refs
// would cost memory for nothing.
func (e *rw2Encoder) cacheRefs(d *encodedSeries, refs []byte, m rw2Meta) {
	if d.lane != e.lane {
		return
	}
	r := d.refs
	switch {
	case r == e.seen:
		r = new(rw2Refs) // seen twice: worth keeping
		d.refs = r
	case r == nil || r.fields == nil: // unseen, or marked under another table
		d.refs = e.seen
		return
	}
	r.epoch, r.typ, r.help, r.unit = e.epoch, m.typ, m.help, m.unit
	if need := len(refs) + rw2MaxMetadata; cap(r.fields) < need {
		r.fields = make([]byte, 0, need) // once: the metadata must not grow it again
	}
	r.fields = append(r.fields[:0], refs...)
	r.meta = int32(len(r.fields))
	r.fields = appendRW2Metadata(r.fields, m.typ, m.help, m.unit)
}
