package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// follow reads the log from the oldest segment after the checkpoint on:
// records ending before start only give their series and metadata (the
// replay), the rest is handed over. It moves to the next segment when the
// writer has started one and the current one is read to its end, and
// returns only when ctx ends or the directory cannot be read.
func (w *Watcher) follow(ctx context.Context, start record.Position) error {
	seg, err := w.firstSegment(start)
	if err != nil {
		return err
	}
	var lr *wal.LiveReader
	for {
		f, err := w.opts.FS.Open(wal.SegmentPath(w.opts.Dir, seg))
		if errors.Is(err, fs.ErrNotExist) {
			next, err := w.skipMissing(ctx, seg)
			if err != nil {
				return err
			}
			seg = next
			continue
		}
		if err != nil {
			return fmt.Errorf("watcher: open segment: %w", err)
		}
		// Every segment is read from its start, the start segment too:
		// records before the start position still give their series.
		f = w.committedOnly(f, seg)
		if lr == nil {
			lr = wal.NewLiveReader(f, seg, 0)
		} else {
			lr.Reset(f, seg, 0)
		}
		w.m.currentSegment.Set(float64(seg))
		err = w.tail(ctx, lr, f, seg)
		f.Close()
		if err != nil {
			return err
		}
		seg++
	}
}

// firstSegment returns the segment reading starts in: the oldest one after
// the checkpoint, so that the replay sees every series still in the log.
func (w *Watcher) firstSegment(start record.Position) (int, error) {
	segs, err := wal.ListSegments(w.opts.FS, w.opts.Dir)
	if err != nil {
		return 0, fmt.Errorf("watcher: %w", err)
	}
	for _, s := range segs {
		if s.Index > w.lastCheckpoint {
			return min(s.Index, start.Segment), nil
		}
	}
	return start.Segment, nil
}

// skipMissing is called when segment seg does not exist: either the writer
// has not created it yet (wait for it), or the log was truncated past it
// while the watcher was behind (report the gap, go on with the oldest
// segment still there).
func (w *Watcher) skipMissing(ctx context.Context, seg int) (int, error) {
	for {
		segs, err := wal.ListSegments(w.opts.FS, w.opts.Dir)
		if err != nil {
			return 0, fmt.Errorf("watcher: %w", err)
		}
		for _, s := range segs {
			if s.Index > seg {
				// Segments before the start held only series to replay:
				// missing them loses no sample.
				if from := max(seg, w.readPos.Segment); from < s.Index {
					w.reportGap(from, s.Index, "deleted by WAL truncation while the watcher was behind")
				}
				if w.readPos.Less(record.Position{Segment: s.Index}) {
					w.readPos = record.Position{Segment: s.Index}
				}
				return s.Index, nil
			}
		}
		if w.opts.StopAtEnd {
			return 0, ErrReachedEnd
		}
		if err := w.wait(ctx); err != nil {
			return 0, err
		}
	}
}

// tail reads segment seg (open as f) until the writer has moved on to a
// later segment and everything written to this one was read.
func (w *Watcher) tail(ctx context.Context, lr *wal.LiveReader, f wal.File, seg int) error {
	w.segmentSamples = 0
	w.damage = damage{rereadAt: -1}
	for {
		if err := w.readAvailable(ctx, lr, seg); err != nil {
			return err
		}
		if stop := w.opts.StopAt; stop != nil && !w.readPos.Less(*stop) {
			return ErrReachedEnd
		}
		if err := lr.Err(); err != io.EOF {
			if w.reread(lr, f, seg, err) {
				continue
			}
			if err := w.passDamage(lr, seg, err); err != nil {
				return err
			}
			continue
		}
		newer, err := w.newerSegmentExists(seg)
		if err != nil {
			return err
		}
		if newer || w.opts.StopAtEnd {
			// The writer finishes a segment before it creates the next
			// one: what is in this file now is all there will be (with
			// StopAtEnd, no one writes any more).
			if err := w.readAvailable(ctx, lr, seg); err != nil {
				return err
			}
			if err := lr.Err(); err != io.EOF {
				if !w.reread(lr, f, seg, err) {
					if err := w.passDamage(lr, seg, err); err != nil {
						return err
					}
				}
				continue
			}
			switch size := fileSize(f); {
			case w.damage.open:
				w.damagedToTheEnd(seg, size)
			case lr.Offset() < size:
				w.m.skippedTorn.Add(float64(size - lr.Offset()))
				w.m.corruptions.Inc()
				w.log.Warn("Finished WAL segment ends in a torn record; skipping it",
					"segment", seg, "offset", lr.Position().Offset, "bytes", size-lr.Position().Offset)
			}
			w.finishSegment()
			if !newer {
				return ErrReachedEnd
			}
			return nil
		}
		if err := w.wait(ctx); err != nil {
			return err
		}
	}
}

// readAvailable hands over every complete record the reader has. At the end
// of the data the read position moves past page padding read after the last
// record too. The first record after damage in segment seg ends it.
func (w *Watcher) readAvailable(ctx context.Context, lr *wal.LiveReader, seg int) error {
	for lr.Next() {
		if w.damage.open {
			w.damageEnds(seg, lr.RecordStart().Offset)
		}
		if err := w.handle(ctx, lr.Record(), record.Span{Start: lr.RecordStart(), End: lr.Position()}); err != nil {
			return err
		}
	}
	if lr.Err() == io.EOF {
		w.advance(record.Span{End: lr.Position()})
	}
	return nil
}

// finishSegment is called when a segment has been read to its end.
func (w *Watcher) finishSegment() {
	w.estimateGap(w.segmentSamples)
	w.periodic()
}

func (w *Watcher) newerSegmentExists(seg int) (bool, error) {
	if w.opts.Committed != nil {
		// The writer is done with seg once it committed past it.
		return w.opts.Committed().Segment > seg, nil
	}
	segs, err := wal.ListSegments(w.opts.FS, w.opts.Dir)
	if err != nil {
		return false, fmt.Errorf("watcher: %w", err)
	}
	return len(segs) > 0 && segs[len(segs)-1].Index > seg, nil
}

func fileSize(f wal.File) int64 {
	info, err := f.Stat()
	if err != nil {
		return 0
	}
	return info.Size()
}

// readCheckpoint reads the series of the newest checkpoint, if any and if
// it is newer than the one read last.
func (w *Watcher) readCheckpoint() error {
	cp, err := wal.LastCheckpoint(w.opts.FS, w.opts.Dir)
	if errors.Is(err, wal.ErrNoCheckpoint) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watcher: %w", err)
	}
	if cp.Index == w.lastCheckpoint {
		return nil
	}
	dir := filepath.Join(w.opts.Dir, cp.Name)
	r, err := wal.OpenReader(w.opts.FS, dir)
	if err != nil {
		return fmt.Errorf("watcher: read checkpoint: %w", err)
	}
	defer r.Close()
	err = readIntact(r, func(rec []byte) error {
		w.storeSeriesOnly(rec, cp.Index)
		return nil
	}, func(err error) {
		// A damaged checkpoint loses series, not samples: go on without
		// those the damage reached.
		w.m.corruptions.Inc()
		w.log.Error("Checkpoint is damaged; series in the damaged part are unknown until they appear in a segment", "checkpoint", cp.Name, "err", err)
	})
	if err != nil {
		w.log.Error("Checkpoint could not be read to its end; series after that are unknown until they appear in a segment", "checkpoint", cp.Name, "err", err)
	}
	w.lastCheckpoint = cp.Index
	return nil
}

// collectGarbage reads a checkpoint newer than the last one read, once the
// watcher is past the segments it covers, and tells the consumer which
// series are gone.
func (w *Watcher) collectGarbage() error {
	cp, err := wal.LastCheckpoint(w.opts.FS, w.opts.Dir)
	if errors.Is(err, wal.ErrNoCheckpoint) {
		return nil
	}
	if err != nil {
		return err
	}
	if cp.Index == w.lastCheckpoint || cp.Index >= w.readPos.Segment {
		return nil
	}
	if err := w.readCheckpoint(); err != nil {
		return err
	}
	w.c.SeriesReset(cp.Index)
	return nil
}
