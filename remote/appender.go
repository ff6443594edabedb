package remote

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	promstorage "github.com/prometheus/prometheus/storage"
)

// appendMetrics count what comes in through the Appender, with upstream's
// names.
type appendMetrics struct {
	samplesIn, exemplarsIn, histogramsIn prometheus.Counter
	highestTimestamp                     prometheus.Gauge
	highest                              atomic.Int64 // ms
}

func newAppendMetrics(reg prometheus.Registerer) *appendMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "prometheus", Subsystem: "remote_storage", Name: name, Help: help})
	}
	m := &appendMetrics{
		samplesIn:    counter("samples_in_total", "Samples in to remote storage, compare to samples out for queue managers."),
		exemplarsIn:  counter("exemplars_in_total", "Exemplars in to remote storage, compare to exemplars out for queue managers."),
		histogramsIn: counter("histograms_in_total", "HistogramSamples in to remote storage, compare to histograms out for queue managers."),
		highestTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "prometheus", Subsystem: "remote_storage", Name: "highest_timestamp_in_seconds",
			Help: "Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch. Initialized to 0 when no data has been received yet.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.samplesIn, m.exemplarsIn, m.histogramsIn, m.highestTimestamp)
	}
	return m
}

// Appender returns an appender that only counts what is appended and
// tracks the highest timestamp: the samples themselves reach the endpoints
// through the WAL the primary storage writes.
func (s *Storage) Appender(context.Context) promstorage.Appender {
	return &timestampTracker{m: s.appendM}
}

// AppenderV2 is Appender for promstorage.AppendableV2.
func (s *Storage) AppenderV2(context.Context) promstorage.AppenderV2 {
	return &timestampTrackerV2{timestampTracker{m: s.appendM}}
}

// timestampTracker is the Appender: counts and a highest timestamp,
// published on Commit.
type timestampTracker struct {
	m                              *appendMetrics
	samples, exemplars, histograms int
	highest                        int64
}

func (t *timestampTracker) see(ts int64) {
	t.highest = max(t.highest, ts)
}

// Append counts a float sample.
func (t *timestampTracker) Append(ref promstorage.SeriesRef, _ labels.Labels, ts int64, _ float64) (promstorage.SeriesRef, error) {
	t.samples++
	t.see(ts)
	return ref, nil
}

// AppendExemplar counts an exemplar (its timestamp is not tracked, as
// upstream: not every endpoint is sent exemplars).
func (t *timestampTracker) AppendExemplar(ref promstorage.SeriesRef, _ labels.Labels, _ exemplar.Exemplar) (promstorage.SeriesRef, error) {
	t.exemplars++
	return ref, nil
}

// AppendHistogram counts a histogram sample.
func (t *timestampTracker) AppendHistogram(ref promstorage.SeriesRef, _ labels.Labels, ts int64, _ *histogram.Histogram, _ *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	t.histograms++
	t.see(ts)
	return ref, nil
}

// AppendSTZeroSample counts a start-timestamp zero sample.
func (t *timestampTracker) AppendSTZeroSample(ref promstorage.SeriesRef, _ labels.Labels, _, st int64) (promstorage.SeriesRef, error) {
	t.samples++
	t.see(st)
	return ref, nil
}

// AppendHistogramSTZeroSample counts a start-timestamp zero histogram.
func (t *timestampTracker) AppendHistogramSTZeroSample(ref promstorage.SeriesRef, _ labels.Labels, _, st int64, _ *histogram.Histogram, _ *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	t.histograms++
	t.see(st)
	return ref, nil
}

// UpdateMetadata does nothing: metadata reaches the endpoints through the WAL.
func (*timestampTracker) UpdateMetadata(ref promstorage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (promstorage.SeriesRef, error) {
	return ref, nil
}

// SetOptions does nothing.
func (*timestampTracker) SetOptions(*promstorage.AppendOptions) {}

// Commit publishes the counts and the highest timestamp.
func (t *timestampTracker) Commit() error {
	t.m.samplesIn.Add(float64(t.samples))
	t.m.exemplarsIn.Add(float64(t.exemplars))
	t.m.histogramsIn.Add(float64(t.histograms))
	for {
		cur := t.m.highest.Load()
		if t.highest <= cur {
			break
		}
		if t.m.highest.CompareAndSwap(cur, t.highest) {
			t.m.highestTimestamp.Set(float64(t.highest / 1000))
			break
		}
	}
	*t = timestampTracker{m: t.m}
	return nil
}

// Rollback forgets what was counted.
func (t *timestampTracker) Rollback() error {
	*t = timestampTracker{m: t.m}
	return nil
}

// timestampTrackerV2 is the AppenderV2.
type timestampTrackerV2 struct{ timestampTracker }

// Append counts a sample or histogram and its exemplars.
func (t *timestampTrackerV2) Append(ref promstorage.SeriesRef, _ labels.Labels, _, ts int64, _ float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts promstorage.AOptions) (promstorage.SeriesRef, error) {
	if h != nil || fh != nil {
		t.histograms++
	} else {
		t.samples++
	}
	t.exemplars += len(opts.Exemplars)
	t.see(ts)
	return ref, nil
}
