package queue

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the queue metrics of a process, named as upstream names them
// (prometheus_remote_storage_*) and labelled by remote_name and url.
// Create them once per process and pass them to every Manager.
type Metrics struct {
	samples, samplesFailed, samplesRetried, samplesDropped        *prometheus.CounterVec
	histograms, histogramsFailed, histogramsRetried, histsDropped *prometheus.CounterVec
	exemplars, exemplarsFailed, exemplarsRetried, exemsDropped    *prometheus.CounterVec
	samplesPending, histogramsPending, exemplarsPending           *prometheus.GaugeVec
	sentBatchDuration                                             *prometheus.HistogramVec
	bytes                                                         *prometheus.CounterVec
	shards, shardsMin, shardsMax, shardsDesired, shardCapacity    *prometheus.GaugeVec
	maxSamplesPerSend                                             *prometheus.GaugeVec
	enqueueRetries                                                *prometheus.CounterVec
	highestSent, highestQueued                                    *prometheus.GaugeVec
	metadata, metadataFailed, metadataRetried, metadataBytes      *prometheus.CounterVec
	refused                                                       *prometheus.CounterVec // walship's own
}

// NewMetrics creates the queue metrics and registers them on reg (nil
// registers nothing).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	base := []string{"remote_name", "url"}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "prometheus", Subsystem: "remote_storage", Name: name, Help: help}, append(append([]string{}, base...), extra...))
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "prometheus", Subsystem: "remote_storage", Name: name, Help: help}, base)
	}
	m := &Metrics{
		samples:           counter("samples_total", "Total number of samples sent to remote storage."),
		samplesFailed:     counter("samples_failed_total", "Total number of samples which failed on send to remote storage, non-recoverable errors."),
		samplesRetried:    counter("samples_retried_total", "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable."),
		samplesDropped:    counter("samples_dropped_total", "Total number of samples which were dropped after being read from the WAL before being sent via remote write, either via relabelling, due to being too old or unintentionally because of an unknown reference ID.", "reason"),
		histograms:        counter("histograms_total", "Total number of histograms sent to remote storage."),
		histogramsFailed:  counter("histograms_failed_total", "Total number of histograms which failed on send to remote storage, non-recoverable errors."),
		histogramsRetried: counter("histograms_retried_total", "Total number of histograms which failed on send to remote storage but were retried because the send error was recoverable."),
		histsDropped:      counter("histograms_dropped_total", "Total number of histograms which were dropped after being read from the WAL before being sent via remote write, either via relabelling, due to being too old or unintentionally because of an unknown reference ID.", "reason"),
		exemplars:         counter("exemplars_total", "Total number of exemplars sent to remote storage."),
		exemplarsFailed:   counter("exemplars_failed_total", "Total number of exemplars which failed on send to remote storage, non-recoverable errors."),
		exemplarsRetried:  counter("exemplars_retried_total", "Total number of exemplars which failed on send to remote storage but were retried because the send error was recoverable."),
		exemsDropped:      counter("exemplars_dropped_total", "Total number of exemplars which were dropped after being read from the WAL before being sent via remote write, either via relabelling, due to being too old or unintentionally because of an unknown reference ID.", "reason"),
		samplesPending:    gauge("samples_pending", "The number of samples pending in the queues shards to be sent to the remote storage."),
		histogramsPending: gauge("histograms_pending", "The number of histograms pending in the queues shards to be sent to the remote storage."),
		exemplarsPending:  gauge("exemplars_pending", "The number of exemplars pending in the queues shards to be sent to the remote storage."),
		sentBatchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "prometheus", Subsystem: "remote_storage", Name: "sent_batch_duration_seconds",
			Help:    "Duration of send calls to the remote storage.",
			Buckets: append(prometheus.DefBuckets, 25, 60, 120, 300),
		}, base),
		bytes:             counter("bytes_total", "The total number of bytes of data (not metadata) sent by the queue after compression. Note that when exemplars over remote write is enabled the exemplars included in a remote write request count towards this metric."),
		shards:            gauge("shards", "The number of shards used for parallel sending to the remote storage."),
		shardsMin:         gauge("shards_min", "The minimum number of shards that the queue is allowed to run."),
		shardsMax:         gauge("shards_max", "The maximum number of shards that the queue is allowed to run."),
		shardsDesired:     gauge("shards_desired", "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out."),
		shardCapacity:     gauge("shard_capacity", "The capacity of each shard of the queue used for parallel sending to the remote storage."),
		maxSamplesPerSend: gauge("max_samples_per_send", "The maximum number of samples to be sent, in a single request, to the remote storage. Note that, when sending of exemplars over remote write is enabled, exemplars count towards this limit."),
		enqueueRetries:    counter("enqueue_retries_total", "Total number of times enqueue has failed because a shards queue was full."),
		metadata:          counter("metadata_total", "Total number of metadata entries sent to remote storage."),
		metadataFailed:    counter("metadata_failed_total", "Total number of metadata entries which failed on send to remote storage, non-recoverable errors."),
		metadataRetried:   counter("metadata_retried_total", "Total number of metadata entries which failed on send to remote storage but were retried because the send error was recoverable."),
		metadataBytes:     counter("metadata_bytes_total", "The total number of bytes of metadata sent by the queue after compression."),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "walship", Subsystem: "remote_storage", Name: "requests_refused_total",
			Help: "Requests the endpoint refused for good (not retried), by reason: the HTTP status code, or \"error\" for a request that could not be sent at all. Their samples, histograms and exemplars are counted in prometheus_remote_storage_*_failed_total; after a 413 (reason \"413\"), in prometheus_remote_storage_*_dropped_total{reason=\"too_large\"}.",
		}, append(append([]string{}, base...), "reason")),
		highestQueued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "prometheus", Subsystem: "remote_storage", Name: "queue_highest_timestamp_seconds",
			Help: "Highest timestamp that was enqueued, in seconds since epoch. Initialized to 0 when no data has been received yet.",
		}, base),
		highestSent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "prometheus", Subsystem: "remote_storage", Name: "queue_highest_sent_timestamp_seconds",
			Help: "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
		}, base),
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.samplesFailed, m.samplesRetried, m.samplesDropped,
			m.histograms, m.histogramsFailed, m.histogramsRetried, m.histsDropped,
			m.exemplars, m.exemplarsFailed, m.exemplarsRetried, m.exemsDropped,
			m.samplesPending, m.histogramsPending, m.exemplarsPending, m.sentBatchDuration, m.bytes,
			m.shards, m.shardsMin, m.shardsMax, m.shardsDesired, m.shardCapacity, m.maxSamplesPerSend, m.enqueueRetries, m.highestSent, m.highestQueued,
			m.metadata, m.metadataFailed, m.metadataRetried, m.metadataBytes, m.refused)
	}
	return m
}

// Reasons a sample is dropped before it is sent, as upstream names them.
const (
	reasonDroppedSeries = "dropped_series" // write_relabel_configs dropped its series
	reasonUnknownSeries = "unintentionally_dropped_series"
	reasonTooOld        = "too_old"
	// reasonTooLarge is walship's own: items of a batch the endpoint
	// refused as too large (413) even in smaller requests.
	reasonTooLarge = "too_large"
	// reasonNoSample is walship's own: an exemplar that would go over RW2
	// in a series entry without a sample or histogram, which RW2 forbids.
	reasonNoSample = "no_sample_in_request"
)

// dropCounters count one class of items dropped before sending, by reason.
type dropCounters struct {
	droppedSeries, unknownSeries, tooOld, tooLarge prometheus.Counter
}

// queueMetrics are one queue's children of Metrics, curried once.
type queueMetrics struct {
	samples, samplesFailed, samplesRetried          prometheus.Counter
	histograms, histogramsFailed, histogramsRetried prometheus.Counter
	exemplars, exemplarsFailed, exemplarsRetried    prometheus.Counter
	dropped                                         [numClasses]dropCounters // by itemClass
	exemplarsNoSample                               prometheus.Counter
	pending                                         [numClasses]prometheus.Gauge // by itemClass
	sentBatchDuration                               prometheus.Observer
	bytesSent                                       prometheus.Counter
	shards, shardsMin, shardsMax, shardsDesired     prometheus.Gauge
	shardCapacity, maxSamplesPerSend                prometheus.Gauge
	enqueueRetries                                  prometheus.Counter
	highestSent, highestQueued                      prometheus.Gauge
	metadata, metadataFailed, metadataRetried       prometheus.Counter
	metadataBytes                                   prometheus.Counter
	refused                                         counterVec // curried: reason only
}

// counterVec is a CounterVec curried down to its last label.
type counterVec interface {
	WithLabelValues(...string) prometheus.Counter
}

func drops(v *prometheus.CounterVec, name, url string) dropCounters {
	return dropCounters{
		droppedSeries: v.WithLabelValues(name, url, reasonDroppedSeries),
		unknownSeries: v.WithLabelValues(name, url, reasonUnknownSeries),
		tooOld:        v.WithLabelValues(name, url, reasonTooOld),
		tooLarge:      v.WithLabelValues(name, url, reasonTooLarge),
	}
}

func (m *Metrics) forQueue(name, url string) *queueMetrics {
	l := prometheus.Labels{"remote_name": name, "url": url}
	return &queueMetrics{
		samples:           m.samples.With(l),
		samplesFailed:     m.samplesFailed.With(l),
		samplesRetried:    m.samplesRetried.With(l),
		histograms:        m.histograms.With(l),
		histogramsFailed:  m.histogramsFailed.With(l),
		histogramsRetried: m.histogramsRetried.With(l),
		exemplars:         m.exemplars.With(l),
		exemplarsFailed:   m.exemplarsFailed.With(l),
		exemplarsRetried:  m.exemplarsRetried.With(l),
		dropped: [numClasses]dropCounters{
			classSamples:    drops(m.samplesDropped, name, url),
			classHistograms: drops(m.histsDropped, name, url),
			classExemplars:  drops(m.exemsDropped, name, url),
		},
		exemplarsNoSample: m.exemsDropped.WithLabelValues(name, url, reasonNoSample),
		pending: [numClasses]prometheus.Gauge{
			classSamples:    m.samplesPending.With(l),
			classHistograms: m.histogramsPending.With(l),
			classExemplars:  m.exemplarsPending.With(l),
		},
		sentBatchDuration: m.sentBatchDuration.With(l),
		bytesSent:         m.bytes.With(l),
		shards:            m.shards.With(l),
		shardsMin:         m.shardsMin.With(l),
		shardsMax:         m.shardsMax.With(l),
		shardsDesired:     m.shardsDesired.With(l),
		shardCapacity:     m.shardCapacity.With(l),
		maxSamplesPerSend: m.maxSamplesPerSend.With(l),
		enqueueRetries:    m.enqueueRetries.With(l),
		highestSent:       m.highestSent.With(l),
		highestQueued:     m.highestQueued.With(l),
		metadata:          m.metadata.With(l),
		metadataFailed:    m.metadataFailed.With(l),
		metadataRetried:   m.metadataRetried.With(l),
		metadataBytes:     m.metadataBytes.With(l),
		refused:           m.refused.MustCurryWith(l),
	}
}

// Delete removes the series of the queue named name sending to url, as
// upstream does when a reload stops a queue.
func (m *Metrics) Delete(name, url string) {
	l := prometheus.Labels{"remote_name": name, "url": url}
	for _, v := range []*prometheus.CounterVec{m.samples, m.samplesFailed, m.samplesRetried, m.samplesDropped,
		m.histograms, m.histogramsFailed, m.histogramsRetried, m.histsDropped,
		m.exemplars, m.exemplarsFailed, m.exemplarsRetried, m.exemsDropped, m.bytes, m.enqueueRetries,
		m.metadata, m.metadataFailed, m.metadataRetried, m.metadataBytes, m.refused} {
		v.DeletePartialMatch(l)
	}
	for _, v := range []*prometheus.GaugeVec{m.samplesPending, m.histogramsPending, m.exemplarsPending,
		m.shards, m.shardsMin, m.shardsMax, m.shardsDesired, m.shardCapacity, m.maxSamplesPerSend, m.highestSent, m.highestQueued} {
		v.DeletePartialMatch(l)
	}
	m.sentBatchDuration.DeletePartialMatch(l)
}

// retried counts a request's content as retried.
func (q *queueMetrics) retried(req *Request) {
	q.samplesRetried.Add(float64(req.Samples))
	q.histogramsRetried.Add(float64(req.Histograms))
	q.exemplarsRetried.Add(float64(req.Exemplars))
}
