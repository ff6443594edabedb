package queue

import (
	"log/slog"

	"github.com/walship/walship/wal/record"
)

// This file is the queue's Consumer side: the records the watcher reads
// come in here, on the watcher's goroutine. Series records fill the series
// cache (series.go); samples, histograms and exemplars are queued into
// their series' shards (feed.go); RW2 exemplars that missed their sample
// wait for the next (held.go); metadata records feed the RW1 metadata
// sender.

// intake takes a queue's records from the watcher. It is owned by the
// watcher's goroutine (DropHeld aside, see there).
type intake struct {
	series   *seriesCache
	feeding  feed                     // the record being queued
	carriers map[*encodedSeries]*item // feed.attach's index
	held     heldExemplars            // RW2 exemplars waiting for a sample
	families *metricFamilies          // RW1 metadata to send; nil when none is
	shards   *shardSet
	ledger   *ledger
	proto    *protocolState
	signals  *loadSignals
	age      ageLimit
	batch    int // max_samples_per_send: a shard with this many waiting is woken
	metrics  *queueMetrics
	log      *slog.Logger
	loneLog  logLimit
}

// storeSeries stores series in the cache; first, when not nil, is another
// queue's cache given them just before (see seriesCache.storeAfter).
func (in *intake) storeSeries(series []record.RefSeries, segment int, first *seriesCache) {
	in.series.storeAfter(series, segment, first)
	in.forgetFamilies()
}

// seriesReset resets the cache; first, when not nil, is another queue's
// cache reset just before (see seriesCache.resetAfter).
func (in *intake) seriesReset(segment int, first *seriesCache) {
	in.series.resetAfter(segment, first)
	in.forgetFamilies()
}

// forgetFamilies stops sending the metadata of metric names whose last
// series the cache forgot.
func (in *intake) forgetFamilies() {
	if in.families != nil {
		for _, name := range in.series.gone {
			in.families.remove(name)
		}
	}
	clear(in.series.gone)
	in.series.gone = in.series.gone[:0]
}

func (in *intake) storeMetadata(meta []record.RefMetadata, first *seriesCache) {
	in.series.setMetadataAfter(meta, first)
	if in.families == nil {
		return
	}
	for _, md := range meta {
		s := in.series.get(md.Ref)
		if s == nil || s.state != seriesKept {
			continue
		}
		if name := in.series.metricName(s.data); name != "" {
			in.families.set(name, md)
		}
	}
}

func (in *intake) appendSamples(samples []record.RefSample, at record.Span) int {
	f := in.beginFeed(at, len(samples), kindSample)
	if f == nil {
		return 0
	}
	i := 0
	for ; i < len(samples); i++ {
		s := &samples[i]
		it, ok := f.slot(s.Ref, s.T)
		if !ok {
			break
		}
		if it != nil {
			it.kind, it.st, it.v = kindSample, s.ST, s.V
		}
	}
	return f.end(i, len(samples))
}

func (in *intake) appendHistograms(hs []record.RefHistogramSample, at record.Span) int {
	return appendEach(in, hs, at, kindHistogram, func(h *record.RefHistogramSample, it *item) (record.Ref, int64) {
		if it != nil {
			it.kind, it.st = kindHistogram, h.ST
			it.withExtra().h = h.H.Copy()
		}
		return h.Ref, h.T
	})
}

func (in *intake) appendFloatHistograms(hs []record.RefFloatHistogramSample, at record.Span) int {
	return appendEach(in, hs, at, kindFloatHistogram, func(h *record.RefFloatHistogramSample, it *item) (record.Ref, int64) {
		if it != nil {
			it.kind, it.st = kindFloatHistogram, h.ST
			it.withExtra().fh = h.FH.Copy()
		}
		return h.Ref, h.T
	})
}

// appendExemplars queues exemplars. Over RW2 an exemplar joins its
// series' sample or histogram still waiting in its shard (see
// feed.attach), or waits for the series' next one (heldExemplars); over
// RW1 each is an item of its own.
func (in *intake) appendExemplars(es []record.RefExemplar, at record.Span) int {
	f := in.beginFeed(at, len(es), kindExemplar)
	if f == nil {
		return 0
	}
	attach := in.proto.current() == RW2
	i := 0
	for ; i < len(es); i++ {
		e := &es[i]
		if attach && f.attach(e) {
			continue
		}
		it, ok := f.slot(e.Ref, e.T)
		if !ok {
			break
		}
		if it != nil {
			it.kind, it.v, it.extra = kindExemplar, e.V, &itemExtra{exl: e.Labels}
		}
	}
	return f.end(i, len(es))
}

// appendEach is appendSamples for the kinds that carry more than a value:
// fill, called first with a nil item, returns the entry's series and time,
// and then fills in the item it is given. (Float samples, the bulk of any
// WAL, have their own loop without the indirect calls.)
func appendEach[T any](in *intake, entries []T, at record.Span, kind itemKind, fill func(*T, *item) (record.Ref, int64)) int {
	f := in.beginFeed(at, len(entries), kind)
	if f == nil {
		return 0
	}
	i := 0
	for ; i < len(entries); i++ {
		it, ok := f.slot(fill(&entries[i], nil))
		if !ok {
			break
		}
		if it != nil {
			fill(&entries[i], it)
		}
	}
	return f.end(i, len(entries))
}
