package watcher

import "github.com/walship/walship/wal/record"

// Consumer receives what the watcher reads. All calls come from the
// watcher's one goroutine, in log order; the slices passed are reused after
// the call returns, so a consumer copies what it keeps. The label sets of
// series are reused too (one buffer for them all), and so are the strings
// taken from them.
//
// The Append methods take the samples of one record and return how many of
// the leading ones they accepted. Fewer than all means "full": the watcher
// waits until Ready is signalled (or a short timeout passes) and hands over
// the rest again. Nothing is dropped and nothing more is read meanwhile.
type Consumer interface {
	// StoreSeries records series from a series record found in the given
	// segment (or checkpoint index). It is called during replay too, with
	// one series at a time: the labels are valid only during the call.
	StoreSeries(series []record.RefSeries, segment int)
	// StoreMetadata records the metadata of series.
	StoreMetadata(meta []record.RefMetadata)
	// SeriesReset says that series last stored from a segment below the
	// given index are gone from the log (a checkpoint dropped them): the
	// consumer may forget them once nothing pending refers to them.
	SeriesReset(segment int)

	AppendSamples(samples []record.RefSample, at record.Span) int
	AppendHistograms(histograms []record.RefHistogramSample, at record.Span) int
	AppendFloatHistograms(histograms []record.RefFloatHistogramSample, at record.Span) int
	AppendExemplars(exemplars []record.RefExemplar, at record.Span) int

	// Ready returns a channel that receives a value when an Append that was
	// full may now accept more.
	Ready() <-chan struct{}
	// LowestPending returns the Start of the earliest record that still has
	// samples handed over but not acknowledged by the endpoint, and false
	// when nothing is pending. It may be called from any goroutine.
	LowestPending() (record.Position, bool)
}
