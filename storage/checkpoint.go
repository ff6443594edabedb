package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// Checkpoint batching: series per record, metadata entries per record (as
// upstream), and the bytes of records handed to one Log call. A series
// record of 100 series is about a page: damage to a checkpoint costs the
// series of the records it reaches (readers resync at record starts), so
// records are kept small.
const (
	checkpointSeriesBatch   = 100
	checkpointMetadataBatch = 1000
	checkpointFlushBytes    = 1 << 20
)

// checkpointer builds checkpoint.<last> from the previous checkpoint and
// the segments after it up to last. It keeps the series records keep
// accepts (each ref once) and the newest metadata of those refs, written at
// the end. Samples, histograms and exemplars are dropped: only segments
// every endpoint acknowledged are checkpointed, unless the disk budget
// forces it, and then what is lost is counted, not kept.
type checkpointer struct {
	db   *DB
	keep func(record.Ref) bool
	// lossFrom holds, per endpoint, its acknowledged position; samples of
	// segment records starting at or after it are counted in losses.
	lossFrom map[string]record.Position
	minLoss  record.Position
	losses   map[string]int64

	dec     record.Decoder
	enc     record.Encoder
	cw      *wal.CheckpointWriter
	seen    map[record.Ref]struct{}
	meta    map[record.Ref]record.RefMetadata
	series  []record.RefSeries
	pending [][]byte
	size    int
	damaged int

	scratchSeries []record.RefSeries
	scratchMeta   []record.RefMetadata
	samples       []record.RefSample
	histograms    []record.RefHistogramSample
	floats        []record.RefFloatHistogramSample
}

// checkpoint writes checkpoint.<last> and returns the samples each endpoint
// of lossFrom had not acknowledged in the segments it covers.
func (db *DB) checkpoint(last int, keep func(record.Ref) bool, lossFrom map[string]record.Position) (map[string]int64, error) {
	c := &checkpointer{
		db: db, keep: keep, lossFrom: lossFrom, losses: map[string]int64{},
		seen: map[record.Ref]struct{}{}, meta: map[record.Ref]record.RefMetadata{},
	}
	first := true
	for _, p := range lossFrom {
		if first || p.Less(c.minLoss) {
			c.minLoss, first = p, false
		}
	}
	from := -1
	prev, err := wal.LastCheckpoint(db.opts.FS, db.dir)
	switch {
	case err == nil:
		if prev.Index >= last {
			return c.losses, nil // already done
		}
		from = prev.Index + 1
	case errors.Is(err, wal.ErrNoCheckpoint):
		prev.Index = -1
	default:
		return nil, fmt.Errorf("find checkpoint: %w", err)
	}

	c.cw, err = wal.CreateCheckpoint(db.dir, last, wal.Options{
		FS: db.opts.FS, SegmentSize: db.opts.SegmentSize, Compression: db.opts.Compression, Logger: db.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("create checkpoint: %w", err)
	}
	if err := c.build(prev, from, last); err != nil {
		c.cw.Abort()
		return nil, err
	}
	if err := c.cw.Commit(); err != nil {
		return nil, fmt.Errorf("commit checkpoint: %w", err)
	}
	if c.damaged > 0 {
		db.metrics.corruptions.Add(float64(c.damaged))
	}
	return c.losses, nil
}

func (c *checkpointer) build(prev wal.CheckpointRef, from, last int) error {
	db := c.db
	if prev.Index >= 0 {
		r, err := wal.OpenReader(db.opts.FS, filepath.Join(db.dir, prev.Name))
		if err != nil {
			return fmt.Errorf("open checkpoint %s: %w", prev.Name, err)
		}
		err = c.read(r, false)
		r.Close()
		if err != nil {
			return fmt.Errorf("read checkpoint %s: %w", prev.Name, err)
		}
	}
	segs, err := wal.SegmentRange{Dir: db.dir, First: from, Last: last}.Resolve(db.opts.FS)
	if err != nil {
		return fmt.Errorf("list segments: %w", err)
	}
	if len(segs) > 0 {
		r := wal.NewReader(db.opts.FS, db.dir, segs, 0)
		err = c.read(r, true)
		r.Close()
		if err != nil {
			return fmt.Errorf("read segments: %w", err)
		}
	}
	if err := c.flushSeries(); err != nil {
		return err
	}
	refs := make([]record.Ref, 0, len(c.meta))
	for ref := range c.meta {
		if c.keep(ref) {
			refs = append(refs, ref)
		}
	}
	slices.Sort(refs)
	batch := make([]record.RefMetadata, 0, checkpointMetadataBatch)
	for i, ref := range refs {
		batch = append(batch, c.meta[ref])
		if len(batch) == checkpointMetadataBatch || i == len(refs)-1 {
			if err := c.log(c.enc.Metadata(nil, batch)); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return c.flush()
}

// read goes through every record of r. Damage in a segment (or a
// checkpoint's segment) is logged and passed over to the next intact
// record: what it destroyed cannot be read anyway, and failing would stop
// truncation for good.
func (c *checkpointer) read(r *wal.Reader, segments bool) error {
	for {
		for r.Next() {
			if err := c.record(r.Record(), r.RecordStart(), segments); err != nil {
				return err
			}
		}
		err := r.Err()
		if err == nil {
			return nil
		}
		if !wal.IsCorruption(err) {
			return err
		}
		c.damaged++
		c.db.logger.Warn("Passing over damage in a WAL segment while checkpointing", "err", err)
		if !r.Resync() {
			return nil
		}
	}
}

func (c *checkpointer) record(rec []byte, start record.Position, segments bool) error {
	var err error
	switch typ := c.dec.TypeOf(rec); typ {
	case record.Series:
		if c.scratchSeries, err = c.dec.Series(rec, c.scratchSeries[:0]); err != nil {
			return c.skipBad(err, start)
		}
		for _, s := range c.scratchSeries {
			if _, dup := c.seen[s.Ref]; dup || !c.keep(s.Ref) {
				continue
			}
			c.seen[s.Ref] = struct{}{}
			c.series = append(c.series, s)
			if len(c.series) >= checkpointSeriesBatch {
				if err := c.flushSeries(); err != nil {
					return err
				}
			}
		}
		clear(c.scratchSeries)
	case record.Metadata:
		if c.scratchMeta, err = c.dec.Metadata(rec, c.scratchMeta[:0]); err != nil {
			return c.skipBad(err, start)
		}
		for _, m := range c.scratchMeta {
			c.meta[m.Ref] = m
		}
	default:
		if segments && len(c.lossFrom) > 0 && !start.Less(c.minLoss) {
			n, err := c.countSamples(typ, rec)
			if err != nil {
				return c.skipBad(err, start)
			}
			for name, p := range c.lossFrom {
				if !start.Less(p) {
					c.losses[name] += int64(n)
				}
			}
		}
	}
	return nil
}

// skipBad logs a record that does not decode; the checkpoint goes on
// without it.
func (c *checkpointer) skipBad(err error, at record.Position) error {
	c.damaged++
	c.db.logger.Warn("Skipping a WAL record that does not decode while checkpointing", "position", at.String(), "err", err)
	return nil
}

func (c *checkpointer) countSamples(typ record.Type, rec []byte) (int, error) {
	var err error
	switch typ {
	case record.Samples, record.SamplesV2:
		c.samples, err = c.dec.Samples(rec, c.samples[:0])
		return len(c.samples), err
	case record.HistogramSamples, record.CustomBucketsHistogramSamples, record.HistogramSamplesV2:
		c.histograms, err = c.dec.HistogramSamples(rec, c.histograms[:0])
		return len(c.histograms), err
	case record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples, record.FloatHistogramSamplesV2:
		c.floats, err = c.dec.FloatHistogramSamples(rec, c.floats[:0])
		return len(c.floats), err
	}
	return 0, nil
}

func (c *checkpointer) flushSeries() error {
	if len(c.series) == 0 {
		return nil
	}
	err := c.log(c.enc.Series(nil, c.series))
	clear(c.series)
	c.series = c.series[:0]
	return err
}

// log queues rec and writes the queue once it holds checkpointFlushBytes.
func (c *checkpointer) log(rec []byte) error {
	c.pending = append(c.pending, rec)
	c.size += len(rec)
	if c.size >= checkpointFlushBytes {
		return c.flush()
	}
	return nil
}

func (c *checkpointer) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	if err := c.cw.Log(c.pending...); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	clear(c.pending)
	c.pending, c.size = c.pending[:0], 0
	return nil
}

// deleteCheckpoints removes the checkpoints older than checkpoint.<last>.
func deleteCheckpoints(db *DB, last int) error {
	return wal.DeleteCheckpoints(db.opts.FS, db.dir, last)
}
