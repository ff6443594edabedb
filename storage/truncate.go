package storage

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/walship/walship/wal/record"
)

// Run checkpoints and truncates the log every TruncateFrequency, and
// sooner when a commit finds the log over its disk budget. It returns nil
// when ctx ends or the DB is closed. Failed truncations are logged and
// retried at the next occasion. Run must not be called twice at once.
func (db *DB) Run(ctx context.Context) error {
	tick := time.NewTicker(db.opts.TruncateFrequency)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-db.closeC:
			return nil
		case <-tick.C:
			mint := truncationTime(db.opts, time.Now(), db.caughtUp())
			if err := db.Truncate(mint); err != nil {
				db.logger.Warn("Truncating the WAL failed", "err", err)
			}
		case <-db.budgetC:
			if err := db.truncate(0, false); err != nil {
				db.logger.Warn("Truncating the WAL to its disk budget failed", "err", err)
			}
		}
		if db.onTruncate != nil {
			db.onTruncate()
		}
	}
}

// truncationTime returns the mint Run passes to Truncate: series without a
// sample for MinWALTime are forgotten while every endpoint is caught up,
// for MaxWALTime while one lags behind (upstream's walTruncationTime with
// the lowest sent timestamp taken as now or as unknown).
func truncationTime(o Options, now time.Time, caughtUp bool) int64 {
	keep := o.MaxWALTime
	if caughtUp {
		keep = o.MinWALTime
	}
	return now.Add(-keep).UnixMilli()
}

// acked returns the endpoints' acknowledged positions and the lowest
// segment among them (math.MaxInt when none protects anything).
func (db *DB) acked() (map[string]record.Position, int) {
	if db.opts.Acked == nil {
		return nil, math.MaxInt
	}
	acked := db.opts.Acked()
	lowest := math.MaxInt
	for _, p := range acked {
		lowest = min(lowest, p.Segment)
	}
	return acked, lowest
}

// caughtUp reports whether every endpoint acknowledged up to the segment
// being written.
func (db *DB) caughtUp() bool {
	_, lowest := db.acked()
	db.mu.Lock()
	defer db.mu.Unlock()
	return lowest >= db.w.Segment()
}

// Truncate checkpoints and truncates the log now, as Run does
// periodically. It starts a new segment (if the current one holds
// anything), forgets the series without a committed sample at or after
// mint, and writes checkpoint.N, where N is the last segment it deletes:
// the segments before the lowest acknowledged position, never the one
// being written. Then it deletes those segments and older checkpoints.
//
// If the log directory is over MaxWALBytes even so, older segments are
// deleted too, acknowledged or not, oldest first, until it fits; the samples
// each endpoint loses are counted in
// walship_storage_unsent_samples_deleted_total and logged.
func (db *DB) Truncate(mint int64) error {
	return db.truncate(mint, true)
}

// truncate does the work of Truncate; without full (the disk budget's
// wake-up) it neither starts a segment nor forgets series.
func (db *DB) truncate(mint int64, full bool) error {
	db.truncMu.Lock()
	defer db.truncMu.Unlock()
	start := time.Now()

	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return fmt.Errorf("truncate: %w", ErrClosed)
	}
	if full && db.w.Position().Offset > 0 {
		if _, err := db.w.NextSegment(); err != nil {
			db.mu.Unlock()
			return fmt.Errorf("start next segment: %w", err)
		}
		db.commit() // the finished segment is whole
	}
	active := db.w.Segment()
	db.mu.Unlock()

	if full {
		db.gc(mint, active)
	}
	acked, protected := db.acked()
	u, err := db.usage()
	if err != nil {
		return err
	}
	last, forced := planTruncation(u, active, protected, db.opts.MaxWALBytes)
	if last < 0 {
		return db.remeasure()
	}

	db.mu.Lock()
	deleted := make(map[record.Ref]int, len(db.deleted))
	for ref, seg := range db.deleted {
		if seg > last {
			deleted[ref] = seg
		}
	}
	db.mu.Unlock()
	keep := func(ref record.Ref) bool {
		if _, ok := deleted[ref]; ok {
			return true
		}
		return db.series.byRef(ref) != nil
	}
	var lossFrom map[string]record.Position
	if forced {
		lossFrom = map[string]record.Position{}
		for name, p := range acked {
			if p.Segment <= last {
				lossFrom[name] = p
			}
		}
	}

	db.metrics.checkpointTotal.Inc()
	losses, err := db.checkpoint(last, keep, lossFrom)
	if err != nil {
		db.metrics.checkpointFail.Inc()
		return fmt.Errorf("checkpoint segments up to %d: %w", last, err)
	}

	db.mu.Lock()
	err = db.w.Truncate(last + 1)
	for ref, seg := range db.deleted {
		if seg <= last {
			delete(db.deleted, ref)
		}
	}
	db.metrics.deletedSeries.Set(float64(len(db.deleted)))
	db.mu.Unlock()
	if err != nil {
		// The checkpoint supersedes what is left; the next truncation retries.
		db.logger.Error("Deleting WAL segments failed", "last", last, "err", err)
	}

	db.metrics.checkpointDelTotal.Inc()
	if err := deleteCheckpoints(db, last); err != nil {
		db.metrics.checkpointDelFail.Inc()
		db.logger.Error("Deleting old checkpoints failed", "err", err)
	}

	if forced {
		db.reportForced(u, last, protected, losses)
	}
	if err := db.remeasure(); err != nil {
		return err
	}
	db.metrics.truncateDuration.Observe(time.Since(start).Seconds())
	db.logger.Info("WAL checkpoint complete", "last", last, "forced_by_budget", forced, "duration", time.Since(start))
	return nil
}

// gc forgets the series without a sample since mint. Their series records
// stay in checkpoints until the segment being written now is truncated,
// since it, and only segments before it, may still reference them.
func (db *DB) gc(mint int64, active int) {
	removed := db.series.gc(mint)
	db.metrics.activeSeries.Sub(float64(len(removed)))
	db.mu.Lock()
	for _, s := range removed {
		if !s.logged {
			continue // never written: nothing references it
		}
		if last, ok := db.deleted[s.ref]; !ok || last < active {
			db.deleted[s.ref] = active
		}
	}
	db.metrics.deletedSeries.Set(float64(len(db.deleted)))
	db.mu.Unlock()
}

// remeasure replaces the size estimate by the directory's real size.
func (db *DB) remeasure() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	size, err := db.measure()
	if err != nil {
		return err
	}
	db.size.reset(size, db.w.Segment())
	db.metrics.walBytes.Set(float64(size))
	return nil
}

// reportForced counts and logs, once per truncation, what the disk budget
// deleted before the endpoints sent it.
func (db *DB) reportForced(u dirUsage, last, protected int, losses map[string]int64) {
	segs := 0
	for _, s := range u.segments {
		if s.index <= last && s.index >= protected {
			segs++
		}
	}
	db.metrics.budgetTruncations.Inc()
	db.metrics.segmentsBudgetDel.Add(float64(segs))
	names := make([]string, 0, len(losses))
	var total int64
	for name, n := range losses {
		db.metrics.unsentDeleted.WithLabelValues(name).Add(float64(n))
		names = append(names, name)
		total += n
	}
	sort.Strings(names)
	args := []any{"max_wal_bytes", db.opts.MaxWALBytes, "wal_bytes", u.total(),
		"last_deleted_segment", last, "unacknowledged_segments_deleted", segs, "unsent_samples_deleted", total}
	for _, name := range names {
		args = append(args, "unsent_samples_deleted_"+name, losses[name])
	}
	db.logger.Warn("WAL over its disk budget: deleted segments endpoints had not acknowledged", args...)
}
