package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/walship/walship/wal/record"
)

// This file is the queue's owner: Options, New, which assembles the parts,
// the watcher's Consumer methods (handed to the intake), and Run's loop,
// which runs the shards, reshards them and flushes them.

// Options configure a Manager.
type Options struct {
	// Name and URL label the metrics (remote_name, url).
	Name, URL string
	// Config is the queue_config of the remote_write entry.
	Config config.QueueConfig
	// Metadata is the metadata_config: whether and how often an RW1 queue
	// sends the metric metadata read from the WAL. The zero value sends none.
	Metadata config.MetadataConfig
	// Protocol is RW1 (prometheus.WriteRequest) or RW2.
	Protocol Protocol
	// ExternalLabels are added to every series that lacks them.
	ExternalLabels labels.Labels
	// RelabelConfigs are the write_relabel_configs.
	RelabelConfigs []*relabel.Config
	// Sender delivers requests.
	Sender Sender
	// Metrics are shared by the queues of a process; nil makes unregistered ones.
	Metrics *Metrics
	// Logger receives state changes and drops, with the queue's remote_name
	// and url added (as upstream's queue logs them); nil discards.
	Logger *slog.Logger
	// Now is the clock, for sample_age_limit; nil means time.Now.
	Now func() time.Time
	// Labels is shared with the other queues of the WAL, so that its
	// labels are interned once; nil gives the queue a table of its own.
	Labels *Labels
	// Lane tells apart the queues one watcher feeds that share series
	// encodings (StoreSeriesAfter): each caches RW2 refs only in the
	// encodings it made. Zero for a queue that shares none.
	Lane uint8
	// Also are further endpoints the Sender delivers every request to (a
	// group, see group.go): the metrics count for each of them too, until
	// it leaves. At most 63.
	Also []Target
}

// Manager is the remote-write queue of one endpoint. The watcher feeds it
// (it implements the watcher's Consumer); it spreads samples over shards by
// series, each shard batching and sending with retries, and reports back the
// lowest position not yet acknowledged.
//
// It is the owner of the queue's parts and holds no logic of its own
// besides Run's loop: the intake (the Consumer side), the shards, the
// send policy, the ledger (accounting), the shard planner and the
// metadata sender. Append*, StoreSeries, StoreMetadata and SeriesReset
// must be called from one goroutine (the watcher's). Run owns the shards.
type Manager struct {
	opts     Options
	log      *slog.Logger
	metrics  *queueMetrics
	members  atomic.Uint64 // of the targets (Name, then Also), those counted for
	intake   *intake
	shards   *shardSet
	policy   *sendPolicy
	ledger   *ledger
	planner  *shardPlanner
	metadata *metadataSender
	signals  *loadSignals
	ready    wakeup // the shards have room again
	flushes  chan flushRequest
}

// New returns a Manager. Nothing is sent until Run runs.
func New(opts Options) (*Manager, error) {
	if opts.Sender == nil {
		return nil, errors.New("queue: no sender")
	}
	qc := opts.Config
	if err := CheckConfig(qc); err != nil {
		return nil, err
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Labels == nil {
		opts.Labels = NewLabels()
	}
	if len(opts.Also) >= maxTargets {
		return nil, fmt.Errorf("queue: %d endpoints for one queue, at most %d", len(opts.Also)+1, maxTargets)
	}
	log := opts.Logger.With("remote_name", opts.Name, "url", opts.URL)
	if len(opts.Also) > 0 {
		names := make([]string, len(opts.Also))
		for i, t := range opts.Also {
			names[i] = t.Name
		}
		log = log.With("same_requests_to", names)
	}
	m := &Manager{
		opts:    opts,
		log:     log,
		signals: &loadSignals{in: newEWMARate(0.2, shardUpdateInterval)},
		ready:   newWakeup(),
		flushes: make(chan flushRequest),
	}
	if len(opts.Also) == 0 {
		m.metrics = opts.Metrics.forQueue(opts.Name, opts.URL)
	} else {
		m.members.Store(1<<(len(opts.Also)+1) - 1)
		m.metrics = opts.Metrics.forGroup(append([]Target{{opts.Name, opts.URL}}, opts.Also...), &m.members)
	}
	m.assemble()
	return m, nil
}

// assemble makes the Manager's parts, each given the parts it reports to.
func (m *Manager) assemble() {
	qc, opts, labels := m.opts.Config, m.opts, m.opts.Labels.t
	proto := newProtocolState(opts.Protocol, m.log)
	backoffs := NewBackoff(qc, rand.Float64)
	age := ageLimit{limit: time.Duration(qc.SampleAgeLimit), now: opts.Now}
	capacity := max(qc.Capacity, qc.MaxSamplesPerSend)
	m.policy = &sendPolicy{
		sender:      opts.Sender,
		backoffs:    backoffs,
		proto:       proto,
		sizes:       newSizeLimit(qc.MaxSamplesPerSend, m.metrics.maxSamplesPerSend),
		batchSize:   qc.MaxSamplesPerSend,
		sendSeconds: &m.signals.sendSeconds,
		metrics:     m.metrics,
		log:         m.log,
	}
	m.ledger = &ledger{metrics: m.metrics, age: age, log: m.log}
	m.shards = &shardSet{gauge: m.metrics.shards.current, parts: shardParts{
		policy:    m.policy,
		ledger:    m.ledger,
		labels:    labels,
		lane:      opts.Lane,
		batchSize: qc.MaxSamplesPerSend,
		deadline:  time.Duration(qc.BatchSendDeadline),
		capacity:  capacity,
		room:      m.ready,
	}}
	m.planner = newShardPlanner(qc.MinShards, qc.MaxShards, qc.MaxSamplesPerSend, m.signals, opts.Now)
	m.metadata = &metadataSender{config: opts.Metadata, sender: opts.Sender, proto: proto, backoffs: backoffs, metrics: m.metrics, log: m.log}
	m.intake = &intake{
		series:  newSeriesCache(opts.ExternalLabels, opts.RelabelConfigs, labels, opts.Protocol == RW2),
		shards:  m.shards,
		ledger:  m.ledger,
		proto:   proto,
		signals: m.signals,
		age:     age,
		batch:   qc.MaxSamplesPerSend,
		metrics: m.metrics,
		log:     m.log,
	}
	m.intake.series.lane = opts.Lane
	if opts.Metadata.Send {
		m.intake.families = &m.metadata.families
		m.intake.series.names = map[string]int{} // RW1 metadata follows the metric names of kept series
	}
	m.metrics.shards.min.Set(float64(qc.MinShards))
	m.metrics.shards.max.Set(float64(qc.MaxShards))
	m.metrics.shards.capacity.Set(float64(capacity))
}

// CheckConfig returns an error when New would refuse qc.
func CheckConfig(qc config.QueueConfig) error {
	if qc.MaxSamplesPerSend <= 0 || qc.Capacity <= 0 || qc.MinShards <= 0 || qc.MaxShards < qc.MinShards || qc.BatchSendDeadline <= 0 {
		return errors.New("queue: invalid queue_config: max_samples_per_send, capacity, min_shards and batch_send_deadline must be positive and max_shards at least min_shards")
	}
	return nil
}

// StoreSeries records series from the WAL.
func (m *Manager) StoreSeries(series []record.RefSeries, segment int) {
	m.intake.storeSeries(series, segment, nil)
}

// StoreSeriesAfter records series from the WAL that first, another queue
// fed by the same watcher, with the same Labels and external labels, was
// given just before, from the same goroutine. A series that neither
// queue's write_relabel_configs changes is then first's: m holds a bit
// for it, not an entry and an encoding of its own. From then on every
// StoreSeries, StoreMetadata and SeriesReset of first is followed by the
// After call of m with first, before first's next such call, and first is
// discarded only once m is fed no more; a call with another first (or
// none) makes first's series m's own. Queues that share encodings must
// have different Options.Lane.
func (m *Manager) StoreSeriesAfter(first *Manager, series []record.RefSeries, segment int) {
	m.intake.storeSeries(series, segment, first.intake.series)
}

// StoreMetadata records series metadata. RW2 requests carry it with each
// series; RW1 queues send it per metadata_config in requests of their own,
// by metric name (upstream takes RW1 metadata from scrape targets; walship
// from the WAL's metadata records).
func (m *Manager) StoreMetadata(meta []record.RefMetadata) { m.intake.storeMetadata(meta, nil) }

// StoreMetadataAfter records series metadata that first was given just
// before (see StoreSeriesAfter).
func (m *Manager) StoreMetadataAfter(first *Manager, meta []record.RefMetadata) {
	m.intake.storeMetadata(meta, first.intake.series)
}

// Discard hands the queue's series over to its label table once Run has
// returned and nothing feeds the queue any more: the labels only it held
// are released later, when another queue of the table sweeps. The queue
// must not be used again.
func (m *Manager) Discard() { m.intake.series.discard() }

// SeriesReset forgets series the WAL no longer holds. Samples already
// queued keep their encoded labels.
func (m *Manager) SeriesReset(segment int) { m.intake.seriesReset(segment, nil) }

// SeriesResetAfter forgets series the WAL no longer holds, after first was
// reset just before (see StoreSeriesAfter).
func (m *Manager) SeriesResetAfter(first *Manager, segment int) {
	m.intake.seriesReset(segment, first.intake.series)
}

// AppendSamples queues float samples and returns how many of the leading
// ones it took; fewer than all means the shards are full.
func (m *Manager) AppendSamples(samples []record.RefSample, at record.Span) int {
	return m.intake.appendSamples(samples, at)
}

// AppendHistograms queues integer native histograms (copies: the watcher
// reuses its decoding buffers).
func (m *Manager) AppendHistograms(hs []record.RefHistogramSample, at record.Span) int {
	return m.intake.appendHistograms(hs, at)
}

// AppendFloatHistograms queues float native histograms (copies).
func (m *Manager) AppendFloatHistograms(hs []record.RefFloatHistogramSample, at record.Span) int {
	return m.intake.appendFloatHistograms(hs, at)
}

// AppendExemplars queues exemplars. Over RW2 an exemplar travels in the
// request of a sample or histogram of its series; over RW1 each is an
// entry of its own.
func (m *Manager) AppendExemplars(es []record.RefExemplar, at record.Span) int {
	return m.intake.appendExemplars(es, at)
}

// DropHeld drops the RW2 exemplars still waiting for a sample of their
// series, counting them as no_sample_in_request, so that nothing stays
// pending when nothing more will come: after a replay reached the end of
// the log and was flushed. Call it only while nothing is being appended.
func (m *Manager) DropHeld() {
	m.intake.dropHeld(m.opts.Now().Add(maxExemplarHold)) // later than any was held
}

// Ready is signalled when shards have room again.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// LowestPending returns the start of the oldest record with samples not
// yet acknowledged.
func (m *Manager) LowestPending() (record.Position, bool) { return m.ledger.lowest() }

// HighestSentTimestamp returns the newest sample timestamp (ms) the
// endpoint has accepted, 0 before the first.
func (m *Manager) HighestSentTimestamp() int64 { return m.ledger.highestSent.Load() }

// Run starts the shards and keeps their number right until ctx ends or
// Flush is called. When ctx ends, sending stops where it is: what was not
// acknowledged stays pending, and the watcher's saved position keeps it for
// the next run.
func (m *Manager) Run(ctx context.Context) error {
	shardCtx, stopShards := context.WithCancel(ctx)
	defer stopShards()
	m.shards.start(shardCtx, m.opts.Config.MinShards)
	m.ready.notify()
	m.planner.start()

	// The metadata sender is not a shard: flushes and reshards do not
	// wait for it; it stops when Run returns.
	metaCtx, stopMeta := context.WithCancel(ctx)
	metaDone := make(chan struct{})
	go func() {
		defer close(metaDone)
		m.metadata.run(metaCtx)
	}()
	defer func() { stopMeta(); <-metaDone }()

	ticker := time.NewTicker(m.planner.every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			m.shards.wait()
			m.shards.detach()
			return nil
		case req := <-m.flushes:
			stopMeta() // the flush sends the metadata last
			<-metaDone
			m.flush(ctx, req, stopShards)
			return nil
		case <-ticker.C:
			m.ledger.updatePending()
			current, pending := m.shards.load()
			desired, in := m.planner.decide(current, pending)
			m.metrics.shards.desired.Set(float64(desired))
			if desired == current {
				continue
			}
			m.log.Info("Remote storage resharding", "from", current, "to", desired,
				"in_rate", math.Round(in.InRate), "pending", in.Pending, "send_seconds", in.SendSeconds,
				"busy", math.Round(in.Busy*100)/100, "waited", math.Round(in.Blocked*100)/100, "behind_seconds", math.Round(in.Behind))
			if !m.shards.replace(shardCtx, desired) {
				return nil
			}
			m.ready.notify()
		}
	}
}

// flushRequest asks Run to send what is queued and stop.
type flushRequest struct {
	ctx  context.Context
	done chan error
}

// Flush stops the queue from taking samples, sends everything it holds
// until ctx ends, and then stops it: Run returns. It returns nil when
// everything queued was sent (or refused for good), and an error naming
// how many samples stay unsent otherwise; they stay pending, so the
// watcher's saved position keeps them for the next run. Flush must be
// called while Run runs.
func (m *Manager) Flush(ctx context.Context) error {
	req := flushRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case m.flushes <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// flush takes nothing more, lets the shards send what they hold until the
// flush's deadline (or Run's ctx) ends, then stops them where they are
// (stopShards), and answers req. Once everything was sent, an RW1 queue
// sends its metadata once more (the metadata loop has stopped).
func (m *Manager) flush(ctx context.Context, req flushRequest, stopShards context.CancelFunc) {
	m.shards.detach()
	drained := m.shards.finish()
	select {
	case <-drained:
		m.metadata.last(req.ctx)
		req.done <- nil
	case <-req.ctx.Done():
		stopShards()
		<-drained
		req.done <- fmt.Errorf("queue: flush stopped with %d samples, histograms and exemplars unsent: %w", m.ledger.acks.pendingItems(), req.ctx.Err())
	case <-ctx.Done():
		<-drained
		req.done <- ctx.Err()
	}
	m.ledger.updatePending()
}
