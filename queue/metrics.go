package queue

import (
	"github.com/prometheus/client_golang/prometheus"
)

// This file is the queue's metrics, named and labelled as upstream's.

// Metrics are the queue metrics of a process, named as upstream names them
// (prometheus_remote_storage_*) and labelled by remote_name and url.
// Create them once per process and pass them to every Manager.
type Metrics struct {
	classes           [numClasses]classVecs // samples, histograms, exemplars
	sentBatchDuration *prometheus.HistogramVec
	bytes             *prometheus.CounterVec
	shards            shardVecs
	maxSamplesPerSend *prometheus.GaugeVec
	enqueueRetries    *prometheus.CounterVec
	highestSent       *prometheus.GaugeVec
	highestQueued     *prometheus.GaugeVec
	metadata          metadataVecs
	refused           *prometheus.CounterVec // walship's own
}

// classVecs are the metrics of one class of items (samples_*,
// histograms_*, exemplars_*).
type classVecs struct {
	sent, failed, retried, dropped *prometheus.CounterVec
	pending                        *prometheus.GaugeVec
}

// shardVecs are the shards_* and shard_capacity gauges.
type shardVecs struct {
	current, min, max, desired, capacity *prometheus.GaugeVec
}

// metadataVecs are the metadata_* counters.
type metadataVecs struct {
	sent, failed, retried, bytes *prometheus.CounterVec
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
	class := func(plural string) classVecs {
		return classVecs{
			sent:    counter(plural+"_total", "Total number of "+plural+" sent to remote storage."),
			failed:  counter(plural+"_failed_total", "Total number of "+plural+" which failed on send to remote storage, non-recoverable errors."),
			retried: counter(plural+"_retried_total", "Total number of "+plural+" which failed on send to remote storage but were retried because the send error was recoverable."),
			dropped: counter(plural+"_dropped_total", "Total number of "+plural+" which were dropped after being read from the WAL before being sent via remote write, either via relabelling, due to being too old or unintentionally because of an unknown reference ID.", "reason"),
			pending: gauge(plural+"_pending", "The number of "+plural+" pending in the queues shards to be sent to the remote storage."),
		}
	}
	m := &Metrics{
		classes: [numClasses]classVecs{
			classSamples:    class("samples"),
			classHistograms: class("histograms"),
			classExemplars:  class("exemplars"),
		},
		sentBatchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "prometheus", Subsystem: "remote_storage", Name: "sent_batch_duration_seconds",
			Help:    "Duration of send calls to the remote storage.",
			Buckets: append(prometheus.DefBuckets, 25, 60, 120, 300),
		}, base),
		bytes: counter("bytes_total", "The total number of bytes of data (not metadata) sent by the queue after compression. Note that when exemplars over remote write is enabled the exemplars included in a remote write request count towards this metric."),
		shards: shardVecs{
			current:  gauge("shards", "The number of shards used for parallel sending to the remote storage."),
			min:      gauge("shards_min", "The minimum number of shards that the queue is allowed to run."),
			max:      gauge("shards_max", "The maximum number of shards that the queue is allowed to run."),
			desired:  gauge("shards_desired", "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out."),
			capacity: gauge("shard_capacity", "The capacity of each shard of the queue used for parallel sending to the remote storage."),
		},
		maxSamplesPerSend: gauge("max_samples_per_send", "The maximum number of samples to be sent, in a single request, to the remote storage. Note that, when sending of exemplars over remote write is enabled, exemplars count towards this limit."),
		enqueueRetries:    counter("enqueue_retries_total", "Total number of times enqueue has failed because a shards queue was full."),
		metadata: metadataVecs{
			sent:    counter("metadata_total", "Total number of metadata entries sent to remote storage."),
			failed:  counter("metadata_failed_total", "Total number of metadata entries which failed on send to remote storage, non-recoverable errors."),
			retried: counter("metadata_retried_total", "Total number of metadata entries which failed on send to remote storage but were retried because the send error was recoverable."),
			bytes:   counter("metadata_bytes_total", "The total number of bytes of metadata sent by the queue after compression."),
		},
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
		for _, c := range m.collectors() {
			reg.MustRegister(c)
		}
	}
	return m
}

// counterVecs and gaugeVecs list the vectors, for registering and deleting.
func (m *Metrics) counterVecs() []*prometheus.CounterVec {
	vs := []*prometheus.CounterVec{m.bytes, m.enqueueRetries, m.refused,
		m.metadata.sent, m.metadata.failed, m.metadata.retried, m.metadata.bytes}
	for _, c := range m.classes {
		vs = append(vs, c.sent, c.failed, c.retried, c.dropped)
	}
	return vs
}

func (m *Metrics) gaugeVecs() []*prometheus.GaugeVec {
	vs := []*prometheus.GaugeVec{m.maxSamplesPerSend, m.highestSent, m.highestQueued,
		m.shards.current, m.shards.min, m.shards.max, m.shards.desired, m.shards.capacity}
	for _, c := range m.classes {
		vs = append(vs, c.pending)
	}
	return vs
}

func (m *Metrics) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{m.sentBatchDuration}
	for _, v := range m.counterVecs() {
		cs = append(cs, v)
	}
	for _, v := range m.gaugeVecs() {
		cs = append(cs, v)
	}
	return cs
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
	classes           [numClasses]classMetrics // by itemClass
	exemplarsNoSample prometheus.Counter
	sentBatchDuration prometheus.Observer
	bytesSent         prometheus.Counter
	shards            shardGauges
	maxSamplesPerSend prometheus.Gauge
	enqueueRetries    prometheus.Counter
	highestSent       prometheus.Gauge
	highestQueued     prometheus.Gauge
	metadata          metadataCounters
	refused           counterVec // curried: reason only
}

// classMetrics count one class of items.
type classMetrics struct {
	sent, failed, retried prometheus.Counter
	dropped               dropCounters
	pending               prometheus.Gauge
}

// shardGauges are one queue's shards_* and shard_capacity.
type shardGauges struct {
	current, min, max, desired, capacity prometheus.Gauge
}

// metadataCounters are one queue's metadata_* counters.
type metadataCounters struct {
	sent, failed, retried, bytes prometheus.Counter
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
	q := &queueMetrics{
		exemplarsNoSample: m.classes[classExemplars].dropped.WithLabelValues(name, url, reasonNoSample),
		sentBatchDuration: m.sentBatchDuration.With(l),
		bytesSent:         m.bytes.With(l),
		shards: shardGauges{
			current:  m.shards.current.With(l),
			min:      m.shards.min.With(l),
			max:      m.shards.max.With(l),
			desired:  m.shards.desired.With(l),
			capacity: m.shards.capacity.With(l),
		},
		maxSamplesPerSend: m.maxSamplesPerSend.With(l),
		enqueueRetries:    m.enqueueRetries.With(l),
		highestSent:       m.highestSent.With(l),
		highestQueued:     m.highestQueued.With(l),
		metadata: metadataCounters{
			sent:    m.metadata.sent.With(l),
			failed:  m.metadata.failed.With(l),
			retried: m.metadata.retried.With(l),
			bytes:   m.metadata.bytes.With(l),
		},
		refused: m.refused.MustCurryWith(l),
	}
	for class, v := range m.classes {
		q.classes[class] = classMetrics{
			sent:    v.sent.With(l),
			failed:  v.failed.With(l),
			retried: v.retried.With(l),
			dropped: drops(v.dropped, name, url),
			pending: v.pending.With(l),
		}
	}
	return q
}

// Delete removes the series of the queue named name sending to url, as
// upstream does when a reload stops a queue.
func (m *Metrics) Delete(name, url string) {
	l := prometheus.Labels{"remote_name": name, "url": url}
	for _, v := range m.counterVecs() {
		v.DeletePartialMatch(l)
	}
	for _, v := range m.gaugeVecs() {
		v.DeletePartialMatch(l)
	}
	m.sentBatchDuration.DeletePartialMatch(l)
}

// retried counts a request's content as retried.
func (q *queueMetrics) retried(req *Request) {
	q.classes[classSamples].retried.Add(float64(req.Samples))
	q.classes[classHistograms].retried.Add(float64(req.Histograms))
	q.classes[classExemplars].retried.Add(float64(req.Exemplars))
}
