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
	n := 0
	err = readIntact(r, func(rec []byte) error {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if typ := w.dec.TypeOf(rec); typ == record.Series || typ == record.Metadata {
			start := r.RecordStart()
			w.storeSeriesOnly(rec, start.Segment)
			if typ == record.Series {
				w.preloaded, w.hasPreloaded = start, true
			}
		}
		return nil
	}, func(error) {
		// Damage is reported when the segments are followed; here it is
		// passed over, as it will be then.
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("watcher: preload series: %w", err)
	}
	return nil
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
	var deliverErr error
	err = readIntact(r, func(rec []byte) error {
		typ := w.dec.TypeOf(rec)
		if typ == record.Series || typ == record.Metadata {
			return nil // read at the start
		}
		deliverErr = w.deliverRecord(ctx, rec, typ, at)
		return deliverErr
	}, func(err error) {
		w.m.corruptions.Inc()
		w.log.Error("Checkpoint is damaged; its samples in the damaged part are not sent", "checkpoint", cp.Name, "err", err)
	})
	if deliverErr != nil {
		return deliverErr
	}
	if err != nil {
		w.log.Error("Checkpoint could not be read to its end; its samples after that are not sent", "checkpoint", cp.Name, "err", err)
	}
	return nil
}
