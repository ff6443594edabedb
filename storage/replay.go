package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/metadata"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// replayer rebuilds the series table from the log. The first series record
// seen for a label set wins (upstream's agent does the same); records that
// repeat the labels under another ref are mapped to it, and the other ref
// is remembered as deleted so checkpoints keep its series record while
// segments may still reference it.
type replayer struct {
	db   *DB
	dec  record.Decoder
	dups map[record.Ref]record.Ref

	series     []record.RefSeries
	samples    []record.RefSample
	histograms []record.RefHistogramSample
	floats     []record.RefFloatHistogramSample
	meta       []record.RefMetadata
	unknownRef int
}

// replay reads the newest checkpoint and every segment after it up to the
// one the writer just started. For damage see replayCheckpoint and
// replaySegments.
func (db *DB) replay() error {
	start := time.Now()
	r := &replayer{db: db, dups: map[record.Ref]record.Ref{}}
	from := 0
	cp, err := wal.LastCheckpoint(db.opts.FS, db.dir)
	switch {
	case err == nil:
		cr, err := wal.OpenReader(db.opts.FS, filepath.Join(db.dir, cp.Name))
		if err != nil {
			return fmt.Errorf("open checkpoint %s: %w", cp.Name, err)
		}
		err = db.replayCheckpoint(r, cr, cp)
		cr.Close()
		if err != nil {
			return err
		}
		from = cp.Index + 1
	case errors.Is(err, wal.ErrNoCheckpoint):
	default:
		return fmt.Errorf("find checkpoint: %w", err)
	}

	segs, err := wal.SegmentRange{Dir: db.dir, First: from, Last: db.w.Segment() - 1}.Resolve(db.opts.FS)
	if err != nil {
		return fmt.Errorf("list segments: %w", err)
	}
	if len(segs) > 0 {
		if err := db.replaySegments(r, segs); err != nil {
			return err
		}
	}
	if r.unknownRef > 0 {
		db.logger.Warn("WAL samples reference series without a series record", "samples", r.unknownRef)
	}
	db.metrics.replayDuration.Set(time.Since(start).Seconds())
	db.metrics.deletedSeries.Set(float64(len(db.deleted)))
	return nil
}

// replayCheckpoint reads the checkpoint cp with cr. Damage is passed over
// to the next intact record (a record that does not decode, to the one
// after it), counted and logged: the series it held are unknown until
// they are scraped again, with new refs (see resolve), and their samples
// in the segments are not shipped. Only an I/O error is an error.
func (db *DB) replayCheckpoint(r *replayer, cr *wal.Reader, cp wal.CheckpointRef) error {
	for {
		err := r.read(cr, func(*wal.Reader) int { return cp.Index })
		if err == nil {
			return nil
		}
		if !wal.IsCorruption(err) {
			return fmt.Errorf("replay checkpoint %s: %w", cp.Name, err)
		}
		db.metrics.corruptions.Inc()
		db.logger.Error("Damaged checkpoint found on replay: reading on after the damage; the series it held there are unknown until scraped again", "checkpoint", cp.Name, "err", err)
		cr.Resync() // false after a record that does not decode: Next goes on after it
	}
}

// replaySegments reads segs. Damage is passed over to the next intact
// record (a record that does not decode, to the record after it), counted
// and logged, and reading goes on: nothing later is deleted, so
// the endpoints' saved positions stay valid. Only damage in the newest
// segment (the torn tail a crash leaves) is repaired: cut off, kept in a
// .broken file, and writing goes on in a new segment after it.
func (db *DB) replaySegments(r *replayer, segs []wal.SegmentRef) error {
	sr := wal.NewReader(db.opts.FS, db.dir, segs, 0)
	defer sr.Close()
	last := segs[len(segs)-1].Index
	for {
		err := r.read(sr, (*wal.Reader).Segment)
		if err == nil {
			return nil
		}
		if !wal.IsCorruption(err) {
			return fmt.Errorf("replay wal: %w", err)
		}
		db.metrics.corruptions.Inc()
		var ce *wal.CorruptionError
		if errors.As(err, &ce) && ce.Segment == last {
			db.logger.Warn("Damaged tail of the newest WAL segment found on replay, repairing", "err", err)
			if _, err := db.w.Repair(err); err != nil {
				return fmt.Errorf("repair wal: %w", err)
			}
			return nil
		}
		db.logger.Error("Damaged WAL segment found on replay: reading on after the damage", "err", err)
		sr.Resync() // false after a record that does not decode: Next goes on after it
	}
}

// read applies every record of rd. segment says which segment (or
// checkpoint index) the current record belongs to. A record that does not
// decode is reported as corruption at its position.
func (r *replayer) read(rd *wal.Reader, segment func(*wal.Reader) int) error {
	for rd.Next() {
		if err := r.apply(rd.Record(), segment(rd)); err != nil {
			return &wal.CorruptionError{Dir: r.db.dir, Segment: rd.Segment(), Offset: rd.RecordStart().Offset, Err: err}
		}
	}
	return rd.Err()
}

func (r *replayer) apply(rec []byte, seg int) error {
	var err error
	switch r.dec.TypeOf(rec) {
	case record.Series:
		if r.series, err = r.dec.Series(rec, r.series[:0]); err != nil {
			return fmt.Errorf("decode series: %w", err)
		}
		for _, e := range r.series {
			r.addSeries(e, seg)
		}
		clear(r.series)
	case record.Samples, record.SamplesV2:
		if r.samples, err = r.dec.Samples(rec, r.samples[:0]); err != nil {
			return fmt.Errorf("decode samples: %w", err)
		}
		for _, s := range r.samples {
			r.sample(s.Ref, s.T, seg)
		}
	case record.HistogramSamples, record.CustomBucketsHistogramSamples, record.HistogramSamplesV2:
		if r.histograms, err = r.dec.HistogramSamples(rec, r.histograms[:0]); err != nil {
			return fmt.Errorf("decode histograms: %w", err)
		}
		for _, s := range r.histograms {
			r.sample(s.Ref, s.T, seg)
		}
	case record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples, record.FloatHistogramSamplesV2:
		if r.floats, err = r.dec.FloatHistogramSamples(rec, r.floats[:0]); err != nil {
			return fmt.Errorf("decode float histograms: %w", err)
		}
		for _, s := range r.floats {
			r.sample(s.Ref, s.T, seg)
		}
	case record.Metadata:
		if r.meta, err = r.dec.Metadata(rec, r.meta[:0]); err != nil {
			return fmt.Errorf("decode metadata: %w", err)
		}
		for _, m := range r.meta {
			s := r.resolve(m.Ref, seg)
			if s == nil {
				continue
			}
			s.meta.Store(&metadata.Metadata{Type: model.MetricType(m.Type.String()), Unit: m.Unit, Help: m.Help})
		}
		clear(r.meta)
	default:
		// Exemplars, tombstones and unknown types carry nothing to rebuild.
	}
	return nil
}

func (r *replayer) addSeries(e record.RefSeries, seg int) {
	db := r.db
	db.series.raiseNextRef(e.Ref)
	s := newMemSeries(e.Ref, e.Labels, e.Labels.Hash())
	s.logged = true
	got, created := db.series.setUnlessPresent(s)
	if created {
		db.metrics.activeSeries.Inc()
		return
	}
	if got.ref == e.Ref {
		return // the same series record again (a checkpoint and a segment)
	}
	r.dups[e.Ref] = got.ref
	if last, ok := db.deleted[e.Ref]; !ok || last < seg {
		db.deleted[e.Ref] = seg
	}
}

// resolve returns the series a record's ref stands for, noting that a
// duplicate ref is still referenced in seg.
func (r *replayer) resolve(ref record.Ref, seg int) *memSeries {
	if valid, ok := r.dups[ref]; ok {
		if last := r.db.deleted[ref]; last < seg {
			r.db.deleted[ref] = seg
		}
		ref = valid
	}
	s := r.db.series.byRef(ref)
	if s == nil {
		r.unknownRef++
		// Its series record is gone (damage): a series created later must
		// not take its ref, which the log's records still name.
		r.db.series.raiseNextRef(ref)
	}
	return s
}

func (r *replayer) sample(ref record.Ref, t int64, seg int) {
	if s := r.resolve(ref, seg); s != nil {
		s.updateLastTs(t)
	}
}
