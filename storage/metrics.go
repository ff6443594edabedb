package storage

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the DB's metrics. Names follow upstream's agent
// (tsdb/agent/db.go) where it has one; walship's own start with
// walship_storage_.
type metrics struct {
	activeSeries       prometheus.Gauge
	deletedSeries      prometheus.Gauge
	floatsAppended     prometheus.Counter
	histogramsAppended prometheus.Counter
	exemplarsAppended  prometheus.Counter
	outOfOrder         prometheus.Counter
	truncateDuration   prometheus.Summary
	corruptions        prometheus.Counter
	replayDuration     prometheus.Gauge
	checkpointDelFail  prometheus.Counter
	checkpointDelTotal prometheus.Counter
	checkpointFail     prometheus.Counter
	checkpointTotal    prometheus.Counter
	unsentDeleted      *prometheus.CounterVec
	budgetTruncations  prometheus.Counter
	segmentsBudgetDel  prometheus.Counter
	walBytes           prometheus.Gauge
	commitsFailed      prometheus.Counter
	writerRecoveries   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	appended := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prometheus_agent_samples_appended_total",
		Help: "Total number of samples appended to the storage",
	}, []string{"type"})
	m := &metrics{
		activeSeries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prometheus_agent_active_series",
			Help: "Number of active series being tracked by the WAL storage",
		}),
		deletedSeries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prometheus_agent_deleted_series",
			Help: "Number of series pending deletion from the WAL",
		}),
		floatsAppended:     appended.WithLabelValues("float"),
		histogramsAppended: appended.WithLabelValues("histogram"),
		exemplarsAppended: counter("prometheus_agent_exemplars_appended_total",
			"Total number of exemplars appended to the storage"),
		outOfOrder: counter("prometheus_agent_out_of_order_samples_total",
			"Total number of out of order samples ingestion failed attempts."),
		truncateDuration: prometheus.NewSummary(prometheus.SummaryOpts{
			Name: "prometheus_agent_truncate_duration_seconds",
			Help: "Duration of WAL truncation.",
		}),
		corruptions: counter("prometheus_agent_corruptions_total", "Total number of WAL corruptions."),
		replayDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prometheus_agent_data_replay_duration_seconds",
			Help: "Time taken to replay the data on disk.",
		}),
		checkpointDelFail: counter("prometheus_agent_checkpoint_deletions_failed_total",
			"Total number of checkpoint deletions that failed."),
		checkpointDelTotal: counter("prometheus_agent_checkpoint_deletions_total",
			"Total number of checkpoint deletions attempted."),
		checkpointFail: counter("prometheus_agent_checkpoint_creations_failed_total",
			"Total number of checkpoint creations that failed."),
		checkpointTotal: counter("prometheus_agent_checkpoint_creations_total",
			"Total number of checkpoint creations attempted."),
		unsentDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walship_storage_unsent_samples_deleted_total",
			Help: "Samples (floats and histograms) deleted from the WAL by the disk budget before the endpoint acknowledged them.",
		}, []string{"remote_name"}),
		budgetTruncations: counter("walship_storage_budget_truncations_total",
			"Truncations that deleted segments not yet acknowledged by every endpoint because the WAL exceeded its disk budget."),
		segmentsBudgetDel: counter("walship_storage_budget_segments_deleted_total",
			"Segments deleted by the disk budget before every endpoint acknowledged them."),
		walBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walship_storage_wal_bytes",
			Help: "Size of the WAL directory as the DB accounts it against its disk budget (measured at each truncation, estimated in between).",
		}),
		commitsFailed: counter("walship_storage_commits_failed_total",
			"Commits whose records could not be written to the WAL."),
		writerRecoveries: counter("walship_storage_wal_writer_recoveries_total",
			"Times the WAL writer went on in a new segment after a failure it could not undo (a failed fsync), logging every series record again."),
	}
	if reg != nil {
		reg.MustRegister(m.activeSeries, m.deletedSeries, appended, m.exemplarsAppended, m.outOfOrder,
			m.truncateDuration, m.corruptions, m.replayDuration, m.checkpointDelFail, m.checkpointDelTotal,
			m.checkpointFail, m.checkpointTotal, m.unsentDeleted, m.budgetTruncations, m.segmentsBudgetDel,
			m.walBytes, m.commitsFailed, m.writerRecoveries)
	}
	return m
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// trackingRegisterer remembers what it registered so that Close can
// unregister it (the log's writer has no Unregister of its own), letting a
// process reopen a DB on the same registry.
type trackingRegisterer struct {
	reg prometheus.Registerer
	mu  sync.Mutex
	cs  []prometheus.Collector
}

// newTrackingRegisterer returns nil for a nil reg, so that nothing is registered.
func newTrackingRegisterer(reg prometheus.Registerer) *trackingRegisterer {
	if reg == nil {
		return nil
	}
	return &trackingRegisterer{reg: reg}
}

func (t *trackingRegisterer) Register(c prometheus.Collector) error {
	if err := t.reg.Register(c); err != nil {
		return err
	}
	t.mu.Lock()
	t.cs = append(t.cs, c)
	t.mu.Unlock()
	return nil
}

func (t *trackingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *trackingRegisterer) Unregister(c prometheus.Collector) bool { return t.reg.Unregister(c) }

// unregisterAll removes everything registered through t.
func (t *trackingRegisterer) unregisterAll() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.cs {
		t.reg.Unregister(c)
	}
	t.cs = nil
}

// registerer returns t as a prometheus.Registerer, or a nil interface for a nil t.
func (t *trackingRegisterer) registerer() prometheus.Registerer {
	if t == nil {
		return nil
	}
	return t
}
