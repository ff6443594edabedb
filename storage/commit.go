package storage

import (
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/metadata"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// Buffers of an appender, one per record kind but series (DB.seriesRec).
const (
	bufMeta = iota
	bufSamples
	bufHistograms
	bufFloatHistograms
	bufExemplars
	numBufs
)

// maxKeptSeriesRec is the largest series record buffer kept for the next
// commit: a target's first scrape, not a bulk import's.
const maxKeptSeriesRec = 4 << 20

// Commit writes the transaction to the log in one all-or-nothing
// wal.Writer.Log call: a series record for every series it uses that has
// none in the log yet, then metadata, samples, histograms, float
// histograms and exemplars (upstream's agent order). Then it raises each
// series' newest timestamp, records its metadata and calls Options.Notify.
// On error nothing of the transaction is in the log and the appender is
// rolled back. Commit does not fsync (the log is synced when a segment is
// finished and on Close), like upstream.
func (a *appender) Commit() error {
	defer a.release()
	if len(a.samples)+len(a.histograms)+len(a.floats)+len(a.exemplars)+len(a.meta) == 0 {
		return nil
	}
	a.encode()

	db := a.db
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return fmt.Errorf("commit: %w", ErrClosed)
	}
	if err := db.recoverWriter(); err != nil {
		db.mu.Unlock()
		db.metrics.commitsFailed.Inc()
		return fmt.Errorf("commit: %w", err)
	}
	a.collectNewSeries()
	if len(a.newSeries) > 0 {
		db.seriesRec = record.Encoder{}.Series(db.seriesRec[:0], a.newSeries)
		a.recs = append(a.recs, nil)
		copy(a.recs[1:], a.recs)
		a.recs[0] = db.seriesRec
	}
	before := db.w.Position()
	err := db.w.Log(a.recs...)
	if cap(db.seriesRec) > maxKeptSeriesRec {
		db.seriesRec = nil // a rare huge transaction's
	}
	if err != nil {
		for _, s := range a.marked {
			s.logged = false
		}
		db.mu.Unlock()
		db.metrics.commitsFailed.Inc()
		return fmt.Errorf("commit %d records to wal: %w", len(a.recs), err)
	}
	after := db.w.Position()
	db.commit()
	db.size.add(written(before, after, db.opts.SegmentSize))
	a.keepGoneSeries(after.Segment)
	trigger := db.size.overBudget(db.opts.MaxWALBytes, after.Segment)
	db.mu.Unlock()

	if trigger {
		select {
		case db.budgetC <- struct{}{}:
		default:
		}
	}
	a.publish()
	if db.opts.Notify != nil {
		db.opts.Notify()
	}
	return nil
}

// recoverWriter has a writer that refuses writes (wal.ErrBroken: after a
// failed fsync, or a write it could not take back) go on in a new
// segment. The segment it leaves may have lost records logged before the
// failure, series records among them: every series' record is logged
// again before its next sample, so that nothing logged from now on
// depends on that segment. While a new segment cannot be started, each
// commit tries again and fails. Called with db.mu held.
func (db *DB) recoverWriter() error {
	recovered, err := db.w.Recover()
	if err != nil {
		return fmt.Errorf("start a new wal segment after a failed write: %w", err)
	}
	if recovered {
		db.commit()
		db.series.forEach(func(s *memSeries) { s.logged = false })
		db.metrics.writerRecoveries.Inc()
		db.logger.Warn("WAL writer went on in a new segment after a failure it could not undo; series records are logged again", "segment", db.w.Segment())
	}
	return nil
}

// encode writes every record but the series record into the appender's
// buffers and lists them in a.recs.
func (a *appender) encode() {
	var enc record.Encoder
	if len(a.meta) > 0 {
		a.bufs[bufMeta] = enc.Metadata(a.bufs[bufMeta][:0], a.meta)
		a.recs = append(a.recs, a.bufs[bufMeta])
	}
	if len(a.samples) > 0 {
		a.bufs[bufSamples] = enc.Samples(a.bufs[bufSamples][:0], a.samples)
		a.recs = append(a.recs, a.bufs[bufSamples])
	}
	if len(a.histograms) > 0 {
		rec, custom := enc.HistogramSamples(a.bufs[bufHistograms][:0], a.histograms)
		a.recs = appendNonEmpty(a.recs, rec, custom)
		a.bufs[bufHistograms] = rec[:0]
	}
	if len(a.floats) > 0 {
		rec, custom := enc.FloatHistogramSamples(a.bufs[bufFloatHistograms][:0], a.floats)
		a.recs = appendNonEmpty(a.recs, rec, custom)
		a.bufs[bufFloatHistograms] = rec[:0]
	}
	if len(a.exemplars) > 0 {
		a.bufs[bufExemplars] = enc.Exemplars(a.bufs[bufExemplars][:0], a.exemplars)
		a.recs = append(a.recs, a.bufs[bufExemplars])
	}
}

func appendNonEmpty(recs [][]byte, bs ...[]byte) [][]byte {
	for _, b := range bs {
		if len(b) > 0 {
			recs = append(recs, b)
		}
	}
	return recs
}

// forEachSeries calls f for the series of every pending entry.
func (a *appender) forEachSeries(f func(*memSeries)) {
	for _, ss := range [...][]*memSeries{a.metaSeries, a.sampleSeries, a.histogramSeries, a.floatSeries, a.exemplarSeries} {
		for _, s := range ss {
			f(s)
		}
	}
}

// collectNewSeries lists the series the transaction uses that have no
// series record in the log yet, marking them logged (undone if Log
// fails). Called with db.mu held.
func (a *appender) collectNewSeries() {
	a.forEachSeries(func(s *memSeries) {
		if !s.logged {
			s.logged = true
			a.marked = append(a.marked, s)
			a.newSeries = append(a.newSeries, record.RefSeries{Ref: s.ref, Labels: s.lset})
		}
	})
}

// keepGoneSeries notes that series removed by GC while this transaction
// held them are referenced in segment seg, so checkpoints keep their series
// records until seg is truncated. Called with db.mu held.
func (a *appender) keepGoneSeries(seg int) {
	a.forEachSeries(func(s *memSeries) {
		if s.gone.Load() {
			if last, ok := a.db.deleted[s.ref]; !ok || last < seg {
				a.db.deleted[s.ref] = seg
			}
		}
	})
}

// publish makes the committed samples and metadata the series' state.
func (a *appender) publish() {
	ooo := 0
	for i, s := range a.sampleSeries {
		if !s.updateLastTs(a.samples[i].T) {
			ooo++
		}
	}
	for i, s := range a.histogramSeries {
		if !s.updateLastTs(a.histograms[i].T) {
			ooo++
		}
	}
	for i, s := range a.floatSeries {
		if !s.updateLastTs(a.floats[i].T) {
			ooo++
		}
	}
	if ooo > 0 {
		// Another transaction committed newer samples of the same series
		// first; like upstream, these are in the log anyway and counted.
		a.db.metrics.outOfOrder.Add(float64(ooo))
	}
	for i, s := range a.metaSeries {
		m := a.meta[i]
		s.meta.Store(&metadata.Metadata{Type: model.MetricType(m.Type.String()), Unit: m.Unit, Help: m.Help})
	}
}

// written estimates the bytes a Log call added between two writer
// positions: a new segment costs the padding of the previous one's last page.
func written(before, after record.Position, segmentSize int) int64 {
	if after.Segment == before.Segment {
		return after.Offset - before.Offset
	}
	padded := (before.Offset + wal.PageSize - 1) / wal.PageSize * wal.PageSize
	return padded - before.Offset + int64(after.Segment-before.Segment-1)*int64(segmentSize) + after.Offset
}
