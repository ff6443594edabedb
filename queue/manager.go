package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/walship/walship/wal/record"
)

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
// Append*, StoreSeries, StoreMetadata and SeriesReset must be called from
// one goroutine (the watcher's). Run owns the shards.
type Manager struct {
	opts    Options
	proto   atomic.Int32 // the Protocol in use: RW2 may fall back to RW1
	labels  *labelTable  // the series' labels
	log     *slog.Logger
	metrics *queueMetrics
	members atomic.Uint64 // of the targets (Name, then Also), those counted for

	batchSize int        // max_samples_per_send: items per batch
	sizes     *sizeLimit // items per request: batchSize, lowered by 413 answers
	deadline  time.Duration
	capacity  int
	backoffs  Backoff

	series  *seriesCache // the feeding goroutine's
	feeding feed         // the feeding goroutine's: the record being queued
	// carriers is feed.attach's index, the feeding goroutine's.
	carriers map[*encodedSeries]*item
	flushes  chan flushRequest
	acks     ackTracker
	ready    chan struct{}

	highestSent atomic.Int64 // newest sample timestamp accepted, ms
	// highestQueued is the newest timestamp queued (ms), written by the
	// feeding goroutine.
	highestQueued atomic.Int64
	// waited is how long the feeder was turned away by full shards, for
	// the resharding rule.
	waited waitClock
	// held are RW2 exemplars waiting for their series' next sample.
	held        heldExemplars
	loneLog     logLimit
	partialLog  logLimit
	tooLargeLog logLimit
	refusals    refusalLog
	families    metricFamilies

	mu     sync.RWMutex // guards shards while they are replaced
	shards []*shard

	inRate      *ewmaRate
	sendSeconds meanSeconds
	// lastDecision is when the shard count was last reconsidered, and
	// history what was asked then and before (Run's).
	lastDecision time.Time
	history      *shardHistory
	// updateEvery is how often the shard count is reconsidered.
	updateEvery time.Duration
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
	labels := opts.Labels.t
	log := opts.Logger.With("remote_name", opts.Name, "url", opts.URL)
	if len(opts.Also) > 0 {
		names := make([]string, len(opts.Also))
		for i, t := range opts.Also {
			names[i] = t.Name
		}
		log = log.With("same_requests_to", names)
	}
	m := &Manager{
		opts:        opts,
		labels:      labels,
		log:         log,
		batchSize:   qc.MaxSamplesPerSend,
		deadline:    time.Duration(qc.BatchSendDeadline),
		capacity:    max(qc.Capacity, qc.MaxSamplesPerSend),
		backoffs:    NewBackoff(qc, rand.Float64),
		series:      newSeriesCache(opts.ExternalLabels, opts.RelabelConfigs, labels, opts.Protocol == RW2),
		ready:       make(chan struct{}, 1),
		flushes:     make(chan flushRequest),
		inRate:      newEWMARate(0.2, shardUpdateInterval),
		history:     newShardHistory(int(stabilisationWindow / shardUpdateInterval)),
		updateEvery: shardUpdateInterval,
	}
	if len(opts.Also) == 0 {
		m.metrics = opts.Metrics.forQueue(opts.Name, opts.URL)
	} else {
		m.members.Store(1<<(len(opts.Also)+1) - 1)
		m.metrics = opts.Metrics.forGroup(append([]Target{{opts.Name, opts.URL}}, opts.Also...), &m.members)
	}
	m.sizes = newSizeLimit(qc.MaxSamplesPerSend, m.metrics.maxSamplesPerSend)
	m.proto.Store(int32(opts.Protocol))
	if opts.Metadata.Send {
		m.series.names = map[string]int{} // RW1 metadata follows the metric names of kept series
	}
	m.metrics.shardsMin.Set(float64(qc.MinShards))
	m.metrics.shardsMax.Set(float64(qc.MaxShards))
	m.metrics.shardCapacity.Set(float64(m.capacity))
	return m, nil
}

// CheckConfig returns an error when New would refuse qc.
func CheckConfig(qc config.QueueConfig) error {
	if qc.MaxSamplesPerSend <= 0 || qc.Capacity <= 0 || qc.MinShards <= 0 || qc.MaxShards < qc.MinShards || qc.BatchSendDeadline <= 0 {
		return errors.New("queue: invalid queue_config: max_samples_per_send, capacity, min_shards and batch_send_deadline must be positive and max_shards at least min_shards")
	}
	return nil
}

// protocol returns the protocol requests are built with now.
func (m *Manager) protocol() Protocol { return Protocol(m.proto.Load()) }

// fallBackToRW1 switches an RW2 queue to RW1 for good, after the endpoint
// said it does not understand RW2.
func (m *Manager) fallBackToRW1() {
	if m.proto.Swap(int32(RW1)) == int32(RW2) {
		m.log.Warn("Remote endpoint does not accept Remote-Write 2.0; falling back to 1.0 (prometheus.WriteRequest) for good")
	}
}

func (m *Manager) newBuilder() requestBuilder {
	if m.protocol() == RW2 {
		return newRW2Builder(m.labels)
	}
	return &rw1Builder{tab: m.labels}
}

func (m *Manager) backoff(attempt int, retryAfter time.Duration) time.Duration {
	return m.backoffs.Delay(attempt, retryAfter)
}

// shardUpdateInterval is how often the shard count is reconsidered.
const shardUpdateInterval = 10 * time.Second

// StoreSeries records series from the WAL.
func (m *Manager) StoreSeries(series []record.RefSeries, segment int) {
	m.series.store(series, segment)
	m.forgetFamilies()
}

// StoreMetadata records series metadata. RW2 requests carry it with each
// series; RW1 queues send it per metadata_config in requests of their own,
// by metric name (upstream takes RW1 metadata from scrape targets; walship
// from the WAL's metadata records).
func (m *Manager) StoreMetadata(meta []record.RefMetadata) {
	m.series.setMetadata(meta)
	m.noteMetadata(meta)
}

// SeriesReset forgets series the WAL no longer holds. Samples already
// queued keep their encoded labels.
func (m *Manager) SeriesReset(segment int) {
	m.series.reset(segment)
	m.forgetFamilies()
}

// forgetFamilies stops sending the metadata of metric names whose last
// series the cache forgot.
func (m *Manager) forgetFamilies() {
	for _, name := range m.series.gone {
		m.families.remove(name)
	}
	clear(m.series.gone)
	m.series.gone = m.series.gone[:0]
}

// Ready is signalled when shards have room again.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// LowestPending returns the start of the oldest record with samples not
// yet acknowledged.
func (m *Manager) LowestPending() (record.Position, bool) { return m.acks.lowest() }

func (m *Manager) roomFreed() {
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// AppendSamples queues float samples and returns how many of the leading
// ones it took; fewer than all means the shards are full.
func (m *Manager) AppendSamples(samples []record.RefSample, at record.Span) int {
	f := m.beginFeed(at, len(samples), kindSample)
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

// AppendHistograms queues integer native histograms (copies: the watcher
// reuses its decoding buffers).
func (m *Manager) AppendHistograms(hs []record.RefHistogramSample, at record.Span) int {
	return appendEach(m, hs, at, kindHistogram, func(h *record.RefHistogramSample, it *item) (record.Ref, int64) {
		if it != nil {
			it.kind, it.st = kindHistogram, h.ST
			it.withExtra().h = h.H.Copy()
		}
		return h.Ref, h.T
	})
}

// AppendFloatHistograms queues float native histograms (copies).
func (m *Manager) AppendFloatHistograms(hs []record.RefFloatHistogramSample, at record.Span) int {
	return appendEach(m, hs, at, kindFloatHistogram, func(h *record.RefFloatHistogramSample, it *item) (record.Ref, int64) {
		if it != nil {
			it.kind, it.st = kindFloatHistogram, h.ST
			it.withExtra().fh = h.FH.Copy()
		}
		return h.Ref, h.T
	})
}

// AppendExemplars queues exemplars. Over RW2 an exemplar joins its
// series' sample or histogram still waiting in its shard (see
// feed.attach), or waits for the series' next one (heldExemplars); over
// RW1 each is an item of its own.
func (m *Manager) AppendExemplars(es []record.RefExemplar, at record.Span) int {
	f := m.beginFeed(at, len(es), kindExemplar)
	if f == nil {
		return 0
	}
	attach := m.protocol() == RW2
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

// appendEach is AppendSamples for the kinds that carry more than a value:
// fill, called first with a nil item, returns the entry's series and time,
// and then fills in the item it is given. (Float samples, the bulk of any
// WAL, have their own loop without the indirect calls.)
func appendEach[T any](m *Manager, in []T, at record.Span, kind itemKind, fill func(*T, *item) (record.Ref, int64)) int {
	f := m.beginFeed(at, len(in), kind)
	if f == nil {
		return 0
	}
	i := 0
	for ; i < len(in); i++ {
		it, ok := f.slot(fill(&in[i], nil))
		if !ok {
			break
		}
		if it != nil {
			fill(&in[i], it)
		}
	}
	return f.end(i, len(in))
}

// Run starts the shards and keeps their number right until ctx ends or
// Flush is called. When ctx ends, sending stops where it is: what was not
// acknowledged stays pending, and the watcher's saved position keeps it for
// the next run.
func (m *Manager) Run(ctx context.Context) error {
	shardCtx, stopShards := context.WithCancel(ctx)
	defer stopShards()
	var wg sync.WaitGroup
	start := func(n int) chan struct{} {
		drain := make(chan struct{})
		m.shards = make([]*shard, n)
		for i := range m.shards {
			s := newShard(m, m.capacity)
			m.shards[i] = s
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.run(shardCtx, drain)
			}()
		}
		m.metrics.shards.Set(float64(n))
		return drain
	}
	stop := func() {
		m.mu.Lock()
		m.shards = nil
		m.mu.Unlock()
	}
	m.mu.Lock()
	drain := start(m.opts.Config.MinShards)
	m.mu.Unlock()
	m.roomFreed()
	m.lastDecision = m.opts.Now()

	// The metadata sender is not a shard: flushes and reshards do not
	// wait for it; it stops when Run returns.
	metaCtx, stopMeta := context.WithCancel(ctx)
	metaDone := make(chan struct{})
	go func() {
		defer close(metaDone)
		m.sendMetadataLoop(metaCtx)
	}()
	defer func() { stopMeta(); <-metaDone }()

	ticker := time.NewTicker(m.updateEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			stop()
			return nil
		case req := <-m.flushes:
			// Take nothing more, let the shards send what they hold until
			// the flush's deadline, then stop them where they are.
			stop()
			close(drain)
			drained := make(chan struct{})
			go func() { wg.Wait(); close(drained) }()
			select {
			case <-drained:
				req.done <- nil
			case <-req.ctx.Done():
				stopShards()
				<-drained
				req.done <- fmt.Errorf("queue: flush stopped with %d samples, histograms and exemplars unsent: %w", m.acks.pendingItems(), req.ctx.Err())
			case <-ctx.Done():
				<-drained
				req.done <- ctx.Err()
			}
			m.updatePending()
			return nil
		case <-ticker.C:
			m.updatePending()
			desired, in := m.desiredShards()
			m.metrics.shardsDesired.Set(float64(desired))
			if desired == len(m.shards) {
				continue
			}
			m.log.Info("Remote storage resharding", "from", len(m.shards), "to", desired,
				"in_rate", math.Round(in.InRate), "pending", in.Pending, "send_seconds", in.SendSeconds,
				"busy", math.Round(in.Busy*100)/100, "waited", math.Round(in.Blocked*100)/100, "behind_seconds", math.Round(in.Behind))
			// Stop taking samples, let every shard send what it holds,
			// then start the new set: no sample changes shard while queued,
			// so each series stays in order.
			m.mu.Lock()
			close(drain)
			wg.Wait()
			if ctx.Err() != nil {
				m.shards = nil
				m.mu.Unlock()
				return nil
			}
			drain = start(desired)
			m.mu.Unlock()
			m.roomFreed()
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

// desiredShards measures the interval since the last call and asks the
// rule; it returns the answer and what the rule was asked with.
func (m *Manager) desiredShards() (int, ShardInputs) {
	m.mu.RLock()
	pending := 0
	for _, s := range m.shards {
		pending += s.pending()
	}
	current := len(m.shards)
	m.mu.RUnlock()
	now := m.opts.Now()
	elapsed := now.Sub(m.lastDecision).Seconds()
	m.lastDecision = now
	mean, total := m.sendSeconds.take()
	busy, blocked := 0.0, 0.0
	if elapsed > 0 && current > 0 {
		busy = total / (elapsed * float64(current))
		blocked = m.waited.take(now).Seconds() / elapsed
	}
	behind := 0.0
	if newest := m.highestQueued.Load(); newest > 0 {
		behind = now.Sub(time.UnixMilli(newest)).Seconds()
	}
	in := ShardInputs{
		Current:     current,
		Min:         m.opts.Config.MinShards,
		Max:         m.opts.Config.MaxShards,
		InRate:      m.inRate.tick(),
		Pending:     pending,
		SendSeconds: mean,
		BatchSize:   m.batchSize,
		Busy:        busy,
		Blocked:     blocked,
		Behind:      behind,
	}
	// The history keeps what each interval alone asked for; the answer
	// does not go below the most asked for over the window.
	asked := DesiredShards(in)
	in.Floor = m.history.floor()
	m.history.add(asked)
	return DesiredShards(in), in
}

func (m *Manager) updatePending() {
	for class, n := range m.acks.pendingByClass() {
		m.metrics.pending[class].Set(float64(n))
	}
}

// finish accounts for a batch that ended: acknowledged or refused for good
// (both release its records' positions), or aborted (they stay pending).
// When the endpoint said what it wrote (RW2), that is what counts as sent
// and the rest as failed, whatever the status: a 2xx that wrote less, or a
// 400 that wrote part of the request (a partial write).
func (m *Manager) finish(batch []item, sum *batchSummary, req *Request, outcome sendOutcome, written Written) {
	split := func(n, wrote int) (ok, failed int) {
		if !written.Known {
			if outcome == sent {
				return n, 0
			}
			return 0, n
		}
		ok = min(max(wrote, 0), n)
		return ok, n - ok
	}
	switch outcome {
	case aborted:
		return
	case sent, rejected:
		if outcome == sent {
			m.noteSent(sum.newest)
		}
		s, sf := split(req.Samples, written.Samples)
		h, hf := split(req.Histograms, written.Histograms)
		e, ef := split(req.Exemplars, written.Exemplars)
		m.metrics.samples.Add(float64(s))
		m.metrics.histograms.Add(float64(h))
		m.metrics.exemplars.Add(float64(e))
		m.metrics.samplesFailed.Add(float64(sf))
		m.metrics.histogramsFailed.Add(float64(hf))
		m.metrics.exemplarsFailed.Add(float64(ef))
		if outcome == sent && sf+hf+ef > 0 {
			m.logPartial(sf, hf, ef)
		}
	}
	for _, r := range sum.runs {
		m.acks.done(r.seq, r.n)
	}
	if !sum.extras {
		return
	}
	for i := range batch {
		if x := batch[i].extra; x != nil {
			for _, a := range x.attached {
				m.acks.done(a.seq, 1)
			}
			batch[i].extra = nil // let go of histogram copies and exemplar labels
		}
	}
}

// noteSent raises the highest sent timestamp to newest.
func (m *Manager) noteSent(newest int64) {
	for {
		cur := m.highestSent.Load()
		if newest <= cur {
			return
		}
		if m.highestSent.CompareAndSwap(cur, newest) {
			m.metrics.highestSent.Set(float64(newest) / 1000)
			return
		}
	}
}

// HighestSentTimestamp returns the newest sample timestamp (ms) the
// endpoint has accepted, 0 before the first.
func (m *Manager) HighestSentTimestamp() int64 { return m.highestSent.Load() }

// logPartial logs a request the endpoint accepted while saying it wrote
// less than it was sent, at most once a minute (the failed counters carry
// the totals).
func (m *Manager) logPartial(samples, histograms, exemplars int) {
	if !m.partialLog.allow() {
		return
	}
	m.log.Error("Remote endpoint accepted a request but says it did not write all of it; the rest is counted as failed",
		"samples", samples, "histograms", histograms, "exemplars", exemplars)
}

// logLoneExemplars logs exemplars dropped for want of a sample to travel
// with over RW2, at most once a minute (the counter carries the totals).
func (m *Manager) logLoneExemplars(n int) {
	if !m.loneLog.allow() {
		return
	}
	m.log.Warn("Dropped Remote-Write 2.0 exemplars whose series had no new sample or histogram for "+maxExemplarHold.String()+
		" to travel with, since RW2 forbids series with exemplars only; "+
		`prometheus_remote_storage_exemplars_dropped_total{reason="no_sample_in_request"} counts them all`, "exemplars", n)
}

// refusalLog keeps a burst of refused requests to one log line a minute.
type refusalLog struct {
	mu                             sync.Mutex
	last                           time.Time // when a line was last written
	requests                       int       // refused since then, not logged
	samples, histograms, exemplars int
}

// logInterval is the least time between two lines of a repeated message.
const logInterval = time.Minute

// logLimit lets a repeated message through at most once per logInterval.
type logLimit struct{ last atomic.Int64 } // Unix ns of the last line

func (l *logLimit) allow() bool {
	now, last := time.Now().UnixNano(), l.last.Load()
	return now-last >= int64(logInterval) && l.last.CompareAndSwap(last, now)
}

// refused counts a request the endpoint refused for good, by reason, and
// logs it: the first of a burst at once, the rest summed up at most once a
// minute (the counters carry every one).
func (m *Manager) refused(req *Request, err error) {
	reason := "error"
	var se *SendError
	if errors.As(err, &se) && se.Status != 0 {
		reason = strconv.Itoa(se.Status)
	}
	m.metrics.refused.WithLabelValues(reason).Inc()

	r := &m.refusals
	r.mu.Lock()
	r.requests++
	r.samples += req.Samples
	r.histograms += req.Histograms
	r.exemplars += req.Exemplars
	now := time.Now()
	if now.Sub(r.last) < logInterval {
		r.mu.Unlock()
		return
	}
	n, samples, histograms, exemplars := r.requests, r.samples, r.histograms, r.exemplars
	r.last, r.requests, r.samples, r.histograms, r.exemplars = now, 0, 0, 0, 0
	r.mu.Unlock()
	m.log.Error("Remote endpoint refused requests for good; their data is dropped (logged at most once a minute)",
		"requests", n, "samples", samples, "histograms", histograms, "exemplars", exemplars, "last_err", err)
}
