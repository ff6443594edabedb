package queue

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// One queue can send its requests to several endpoints at once: remote
// groups the remote_write entries whose requests would be the same bytes
// (see remote's package doc) behind one Sender that delivers each request
// to all of them. Everything the queue counts then counts for each
// endpoint of the group, under its own remote_name and url, until the
// endpoint leaves the group (Manager.Leave).

// Target names an endpoint for the metrics: its remote_name and url.
type Target struct{ Name, URL string }

// maxTargets is how many endpoints one queue's metrics can count for.
const maxTargets = 64

// Leave stops counting the queue's metrics for t, an endpoint that left
// the group (a queue of its own counts for it from now on).
func (m *Manager) Leave(t Target) {
	if len(m.opts.Also) == 0 {
		return
	}
	for i, target := range append([]Target{{m.opts.Name, m.opts.URL}}, m.opts.Also...) {
		if target == t {
			m.members.And(^(uint64(1) << i))
		}
	}
}

// forGroup returns metrics that count for every target whose bit is set
// in on (target i is bit i).
func (m *Metrics) forGroup(targets []Target, on *atomic.Uint64) *queueMetrics {
	each := make([]*queueMetrics, len(targets))
	for i, t := range targets {
		each[i] = m.forQueue(t.Name, t.URL)
	}
	c := func(get func(*queueMetrics) prometheus.Counter) prometheus.Counter {
		cs := make([]prometheus.Counter, len(each))
		for i, q := range each {
			cs[i] = get(q)
		}
		return teeCounter{cs[0], cs, on}
	}
	g := func(get func(*queueMetrics) prometheus.Gauge) prometheus.Gauge {
		gs := make([]prometheus.Gauge, len(each))
		for i, q := range each {
			gs[i] = get(q)
		}
		return teeGauge{gs[0], gs, on}
	}
	observers := make([]prometheus.Observer, len(each))
	vecs := make([]counterVec, len(each))
	for i, q := range each {
		observers[i], vecs[i] = q.sentBatchDuration, q.refused
	}
	tee := queueMetrics{
		exemplarsNoSample: c(func(q *queueMetrics) prometheus.Counter { return q.exemplarsNoSample }),
		sentBatchDuration: teeObserver{observers, on},
		bytesSent:         c(func(q *queueMetrics) prometheus.Counter { return q.bytesSent }),
		shards: shardGauges{
			current:  g(func(q *queueMetrics) prometheus.Gauge { return q.shards.current }),
			min:      g(func(q *queueMetrics) prometheus.Gauge { return q.shards.min }),
			max:      g(func(q *queueMetrics) prometheus.Gauge { return q.shards.max }),
			desired:  g(func(q *queueMetrics) prometheus.Gauge { return q.shards.desired }),
			capacity: g(func(q *queueMetrics) prometheus.Gauge { return q.shards.capacity }),
		},
		maxSamplesPerSend: g(func(q *queueMetrics) prometheus.Gauge { return q.maxSamplesPerSend }),
		enqueueRetries:    c(func(q *queueMetrics) prometheus.Counter { return q.enqueueRetries }),
		highestSent:       g(func(q *queueMetrics) prometheus.Gauge { return q.highestSent }),
		highestQueued:     g(func(q *queueMetrics) prometheus.Gauge { return q.highestQueued }),
		metadata: metadataCounters{
			sent:    c(func(q *queueMetrics) prometheus.Counter { return q.metadata.sent }),
			failed:  c(func(q *queueMetrics) prometheus.Counter { return q.metadata.failed }),
			retried: c(func(q *queueMetrics) prometheus.Counter { return q.metadata.retried }),
			bytes:   c(func(q *queueMetrics) prometheus.Counter { return q.metadata.bytes }),
		},
		refused: teeVec{vecs, on},
	}
	for class := range tee.classes {
		of := func(q *queueMetrics) *classMetrics { return &q.classes[class] }
		tee.classes[class] = classMetrics{
			sent:    c(func(q *queueMetrics) prometheus.Counter { return of(q).sent }),
			failed:  c(func(q *queueMetrics) prometheus.Counter { return of(q).failed }),
			retried: c(func(q *queueMetrics) prometheus.Counter { return of(q).retried }),
			dropped: dropCounters{
				droppedSeries: c(func(q *queueMetrics) prometheus.Counter { return of(q).dropped.droppedSeries }),
				unknownSeries: c(func(q *queueMetrics) prometheus.Counter { return of(q).dropped.unknownSeries }),
				tooOld:        c(func(q *queueMetrics) prometheus.Counter { return of(q).dropped.tooOld }),
				tooLarge:      c(func(q *queueMetrics) prometheus.Counter { return of(q).dropped.tooLarge }),
			},
			pending: g(func(q *queueMetrics) prometheus.Gauge { return of(q).pending }),
		}
	}
	return &tee
}

// teeCounter adds to the counters of the targets still in the group.
type teeCounter struct {
	prometheus.Counter // the first target's, for the rest of the interface
	each               []prometheus.Counter
	on                 *atomic.Uint64
}

func (t teeCounter) Inc() { t.Add(1) }

func (t teeCounter) Add(v float64) { forMembers(t.on, t.each, func(c prometheus.Counter) { c.Add(v) }) }

// forMembers calls f with each of each whose bit is set in on.
func forMembers[T any](on *atomic.Uint64, each []T, f func(T)) {
	bits := on.Load()
	for i, x := range each {
		if bits&(1<<i) != 0 {
			f(x)
		}
	}
}

// teeGauge sets the gauges of the targets still in the group.
type teeGauge struct {
	prometheus.Gauge // the first target's, for the rest of the interface
	each             []prometheus.Gauge
	on               *atomic.Uint64
}

func (t teeGauge) Set(v float64) { forMembers(t.on, t.each, func(g prometheus.Gauge) { g.Set(v) }) }
func (t teeGauge) Inc()          { t.Add(1) }
func (t teeGauge) Dec()          { t.Add(-1) }
func (t teeGauge) Add(v float64) { forMembers(t.on, t.each, func(g prometheus.Gauge) { g.Add(v) }) }
func (t teeGauge) Sub(v float64) { t.Add(-v) }
func (t teeGauge) SetToCurrentTime() {
	forMembers(t.on, t.each, func(g prometheus.Gauge) { g.SetToCurrentTime() })
}

// teeObserver observes into the histograms of the targets still in the group.
type teeObserver struct {
	each []prometheus.Observer
	on   *atomic.Uint64
}

func (t teeObserver) Observe(v float64) {
	forMembers(t.on, t.each, func(o prometheus.Observer) { o.Observe(v) })
}

// teeVec is refused's tee: the reason's counter of every target.
type teeVec struct {
	each []counterVec
	on   *atomic.Uint64
}

func (t teeVec) WithLabelValues(lvs ...string) prometheus.Counter {
	cs := make([]prometheus.Counter, len(t.each))
	for i, v := range t.each {
		cs[i] = v.WithLabelValues(lvs...)
	}
	return teeCounter{cs[0], cs, t.on}
}
