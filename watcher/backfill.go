package watcher

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// preloadSeries hands the consumer the series and metadata of every
// segment before any sample is handed over (Options.Backfill). A damaged
// segment gives what precedes the damage; any other read error ends it.
func (w *Watcher) preloadSeries(ctx context.Context) error {
	segs, err := wal.ListSegments(w.opts.FS, w.opts.Dir)
	if err != nil {
		return fmt.Errorf("watcher: %w", err)
	}
	var from []wal.SegmentRef
	for _, s := range segs {
		if s.Index > w.lastCheckpoint {
			from = append(from, s)
		}
	}
	if len(from) == 0 {
		return nil
	}
	r := wal.NewReader(w.opts.FS, w.opts.Dir, from, 0)
	r.OnlyTypes(record.Series, record.Metadata) // samples records are not even decompressed
	defer r.Close()
	for n := 0; ; {
		for r.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			rec := r.Record()
			if typ := w.dec.TypeOf(rec); typ == record.Series || typ == record.Metadata {
				start := r.RecordStart()
				w.storeSeriesOnly(rec, start.Segment)
				if typ == record.Series {
					w.preloaded, w.hasPreloaded = start, true
				}
			}
		}
		// Damage is reported when the segments are followed; here the
		// rest of a damaged segment is skipped, as it will be then.
		err := r.Err()
		if err != nil && !wal.IsCorruption(err) {
			return fmt.Errorf("watcher: preload series: %w", err)
		}
		if err == nil || !r.SkipSegment() {
			return nil
		}
	}
}

// backfillCheckpoint hands over the samples, histograms and exemplars of the
// newest checkpoint (Options.Backfill). They all carry the position of the
// checkpoint's start, before every segment it precedes.
func (w *Watcher) backfillCheckpoint(ctx context.Context) error {
	cp, err := wal.LastCheckpoint(w.opts.FS, w.opts.Dir)
	if errors.Is(err, wal.ErrNoCheckpoint) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watcher: %w", err)
	}
	r, err := wal.OpenReader(w.opts.FS, filepath.Join(w.opts.Dir, cp.Name))
	if err != nil {
		return fmt.Errorf("watcher: read checkpoint: %w", err)
	}
	defer r.Close()
	at := record.Span{Start: record.Position{Segment: cp.Index}, End: record.Position{Segment: cp.Index}}
	for r.Next() {
		rec := r.Record()
		typ := w.dec.TypeOf(rec)
		if typ == record.Series || typ == record.Metadata {
			continue // read at the start
		}
		if err := w.deliverRecord(ctx, rec, typ, at); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		w.m.corruptions.Inc()
		w.log.Error("Checkpoint is damaged; its samples after the damage are not sent", "checkpoint", cp.Name, "err", err)
	}
	return nil
}
