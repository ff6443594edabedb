package watcher

import (
	"context"
	"time"

	"github.com/walship/walship/wal/record"
)

// readyTimeout bounds a wait for the consumer's Ready signal, so that a
// consumer that forgets to signal slows the watcher down instead of
// stopping it.
const readyTimeout = time.Second

// handle decodes one record and hands it to the consumer. Records that end
// at or before the read position were handed over before (the replay of a
// restart): only their series and metadata are used.
func (w *Watcher) handle(ctx context.Context, rec []byte, at record.Span) error {
	if stop := w.opts.StopAt; stop != nil && !at.Start.Less(*stop) {
		return ErrReachedEnd
	}
	typ := w.dec.TypeOf(rec)
	w.m.recordsRead[typ].Inc()
	if typ == record.Series || typ == record.Metadata {
		// A series record the backfill stored already is not decoded
		// again (metadata records are: they may change along the log).
		if typ == record.Metadata || !w.hasPreloaded || w.preloaded.Less(at.Start) {
			w.storeSeriesOnly(rec, at.Start.Segment)
		}
		w.advance(at)
		return nil
	}
	if !w.readPos.Less(at.End) {
		return nil // replay: samples were handed over before the restart
	}
	if err := w.deliverRecord(ctx, rec, typ, at); err != nil {
		return err
	}
	w.advance(at)
	return nil
}

// deliverRecord hands the samples, histograms or exemplars of one record to
// the consumer. It returns an error only when ctx ended while the consumer
// was full; a record that does not decode is counted and skipped.
func (w *Watcher) deliverRecord(ctx context.Context, rec []byte, typ record.Type, at record.Span) error {
	var decErr, sendErr error
	switch typ {
	case record.Samples, record.SamplesV2:
		decErr, sendErr = decodeAndDeliver(ctx, w, rec, at, &w.samples, w.dec.Samples, sampleTime, w.c.AppendSamples)
	case record.HistogramSamples, record.CustomBucketsHistogramSamples, record.HistogramSamplesV2:
		if w.opts.SendHistograms {
			decErr, sendErr = decodeAndDeliver(ctx, w, rec, at, &w.histograms, w.dec.HistogramSamples, histogramTime, w.c.AppendHistograms)
		}
	case record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples, record.FloatHistogramSamplesV2:
		if w.opts.SendHistograms {
			decErr, sendErr = decodeAndDeliver(ctx, w, rec, at, &w.floatHists, w.dec.FloatHistogramSamples, floatHistogramTime, w.c.AppendFloatHistograms)
		}
	case record.Exemplars:
		if !w.opts.SendExemplars {
			break
		}
		if w.exemplars, decErr = w.dec.Exemplars(rec, w.exemplars[:0]); decErr == nil {
			sendErr = deliver(ctx, w, w.exemplars, at, w.c.AppendExemplars)
		}
	case record.Tombstones, record.MmapMarkers, record.MinValidTime:
		// Nothing to send.
	default:
		w.m.decodeFailures.Inc()
		w.log.Debug("Skipping WAL record of unknown type", "position", at.Start.String())
	}
	if sendErr != nil {
		return sendErr // ctx ended while the consumer was full
	}
	if decErr != nil {
		w.m.decodeFailures.Inc()
		w.log.Warn("Skipping WAL record that does not decode", "position", at.Start.String(), "type", typ.String(), "err", decErr)
	}
	return nil
}

// advance moves the read position past a record that was fully handled.
func (w *Watcher) advance(at record.Span) {
	if w.readPos.Less(at.End) {
		w.readPos = at.End
	}
}

// storeSeriesOnly passes on the series and metadata of a record.
func (w *Watcher) storeSeriesOnly(rec []byte, segment int) {
	var err error
	switch w.dec.TypeOf(rec) {
	case record.Series:
		// One series at a time, its labels in the decoder's one buffer:
		// reading a million series makes no garbage.
		err = w.dec.EachSeries(rec, func(s record.RefSeries) {
			w.series = append(w.series[:0], s)
			w.c.StoreSeries(w.series, segment)
		})
	case record.Metadata:
		if w.metadata, err = w.dec.Metadata(rec, w.metadata[:0]); err == nil {
			w.c.StoreMetadata(w.metadata)
		}
	}
	if err != nil {
		w.m.decodeFailures.Inc()
		w.log.Warn("Skipping WAL record that does not decode", "segment", segment, "err", err)
	}
}

// decodeAndDeliver decodes a record of samples or histograms into buf,
// keeps those newer than the start time (FromNow), counts them for gap
// estimates and hands them over.
func decodeAndDeliver[T any](ctx context.Context, w *Watcher, rec []byte, at record.Span, buf *[]T,
	decode func([]byte, []T) ([]T, error), ts func(T) int64, appendFn func([]T, record.Span) int,
) (decErr, sendErr error) {
	if *buf, decErr = decode(rec, (*buf)[:0]); decErr != nil {
		return decErr, nil
	}
	*buf = filterTime(*buf, w.startTime, ts)
	w.segmentSamples += len(*buf)
	return nil, deliver(ctx, w, *buf, at, appendFn)
}

func sampleTime(s record.RefSample) int64                       { return s.T }
func histogramTime(s record.RefHistogramSample) int64           { return s.T }
func floatHistogramTime(s record.RefFloatHistogramSample) int64 { return s.T }

// filterTime keeps, in place, the entries newer than after (all of them
// when after is 0).
func filterTime[T any](s []T, after int64, ts func(T) int64) []T {
	if after == 0 {
		return s
	}
	kept := s[:0]
	for _, x := range s {
		if ts(x) > after {
			kept = append(kept, x)
		}
	}
	return kept
}

// deliver hands items (one record's worth) to the consumer, waiting while
// it is full, until it took them all or ctx ends.
func deliver[T any](ctx context.Context, w *Watcher, items []T, at record.Span, appendFn func([]T, record.Span) int) error {
	w.delivering, w.deliveringFrom = true, at.Start
	defer func() { w.delivering = false }()
	for len(items) > 0 {
		n := appendFn(items, at)
		items = items[n:]
		if len(items) == 0 {
			break
		}
		timer := time.NewTimer(readyTimeout)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-w.c.Ready():
		case <-timer.C:
		}
		timer.Stop()
		w.periodic()
	}
	return nil
}
