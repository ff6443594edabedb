package watcher

import "github.com/walship/walship/wal/record"

// Span is where a record lies in the log: Start is its first byte, End the
// first byte after it. A reader started at Start reads the record again; one
// started at End reads the record after it.
type Span struct {
	Start, End record.Position
}

// Consumer receives what the watcher reads. All calls come from the
// watcher's one goroutine, in log order; the slices passed are reused after
// the call returns, so a consumer copies what it keeps.
//
// The Append methods take the samples of one record and return how many of
// the leading ones they accepted. Fewer than all means "full": the watcher
// waits until Ready is signalled (or a short timeout passes) and hands over
// the rest again. Nothing is dropped and nothing more is read meanwhile.
type Consumer interface {
	// StoreSeries records series from a series record found in the given
	// segment (or checkpoint index). It is called during replay too.
	StoreSeries(series []record.RefSeries, segment int)
	// StoreMetadata records the metadata of series.
	StoreMetadata(meta []record.RefMetadata)
	// SeriesReset says that series last stored from a segment below the
	// given index are gone from the log (a checkpoint dropped them): the
	// consumer may forget them once nothing pending refers to them.
	SeriesReset(segment int)

	AppendSamples(samples []record.RefSample, at Span) int
	AppendHistograms(histograms []record.RefHistogramSample, at Span) int
	AppendFloatHistograms(histograms []record.RefFloatHistogramSample, at Span) int
	AppendExemplars(exemplars []record.RefExemplar, at Span) int

	// Ready returns a channel that receives a value when an Append that was
	// full may now accept more.
	Ready() <-chan struct{}
	// LowestPending returns the Start of the earliest record that still has
	// samples handed over but not acknowledged by the endpoint, and false
	// when nothing is pending. It may be called from any goroutine.
	LowestPending() (record.Position, bool)
}
