package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal/record"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T, rawURL string) *remote.Client {
	return newClientTimeout(t, rawURL, 5*time.Second)
}

// newClientTimeout is newClient with a remote_timeout of timeout.
func newClientTimeout(t *testing.T, rawURL string, timeout time.Duration) *remote.Client {
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	cfg := config.DefaultRemoteWriteConfig
	cfg.URL = &commoncfg.URL{URL: u}
	cfg.RemoteTimeout = model.Duration(timeout)
	c, err := remote.NewClient("test", &cfg, remote.ClientOptions{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func testQueueConfig() config.QueueConfig {
	qc := config.DefaultQueueConfig
	qc.BatchSendDeadline = model.Duration(10 * time.Millisecond)
	qc.MaxSamplesPerSend = 100
	qc.Capacity = 500
	qc.MinShards = 2
	qc.MinBackoff = model.Duration(time.Millisecond)
	qc.MaxBackoff = model.Duration(20 * time.Millisecond)
	return qc
}

func runManager(t *testing.T, opts queue.Options) (*queue.Manager, func()) {
	return runManagerEvery(t, opts, 0)
}

// runManagerEvery is runManager reconsidering the shard count every
// interval (the default when zero).
func runManagerEvery(t *testing.T, opts queue.Options, every time.Duration) (*queue.Manager, func()) {
	m, err := queue.New(opts)
	require.NoError(t, err)
	if every > 0 {
		m.SetShardUpdateInterval(every)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return m, stop
}

// feed appends scrapes like the watcher does: waiting on Ready when full.
func feed(t *testing.T, m *queue.Manager, nSeries, scrapes int) {
	feedScrapes(t, m, nSeries, 0, scrapes)
}

func requireAllInOrder(t *testing.T, r *testkit.Receiver, nSeries, scrapes int) {
	t.Helper()
	samples := r.Samples()
	require.Len(t, samples, nSeries)
	for key, ss := range samples {
		require.Len(t, ss, scrapes, key)
		for i, s := range ss {
			require.Equal(t, int64(i)*1000, s.Timestamp, "%s sample %d out of order or duplicated", key, i)
		}
	}
}

// bodiesOf returns the SHA-256 of every request body r got, in arrival
// order, and how many times r accepted each.
func bodiesOf(r *testkit.Receiver) ([][32]byte, map[[32]byte]int) {
	var bodies [][32]byte
	accepted := map[[32]byte]int{}
	for _, ex := range r.Requests() {
		bodies = append(bodies, ex.Hash)
		if ex.Accepted {
			accepted[ex.Hash]++
		}
	}
	return bodies, accepted
}

func TestManagerSendsEverything(t *testing.T) {
	r := testkit.NewReceiver(t)
	m, stop := runManager(t, queue.Options{Name: "test", URL: r.URL, Config: testQueueConfig(), Sender: newClient(t, r.URL),
		ExternalLabels: labels.FromStrings("cluster", "eu")})
	feed(t, m, 50, 100)
	testkit.Eventually(t, func() bool { return r.Accepted().Samples == 50*100 }, "everything arrives")
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "everything acknowledged")
	stop()
	requireAllInOrder(t, r, 50, 100)
	for key := range r.Samples() {
		require.Contains(t, key, `cluster="eu"`)
	}
}

// TestManagerRetriesSameBytes: the endpoint fails with 503 for a while; the
// failed requests are resent byte for byte and nothing is lost or repeated.
func TestManagerRetriesSameBytes(t *testing.T) {
	r := testkit.NewReceiver(t)
	r.Respond(func(req *testkit.Request) testkit.Reply {
		if req.N%3 != 0 { // two of three attempts fail
			return testkit.Reply{Status: http.StatusServiceUnavailable}
		}
		return testkit.Reply{}
	})
	m, stop := runManager(t, queue.Options{Name: "test", URL: r.URL, Config: testQueueConfig(), Sender: newClient(t, r.URL)})
	feed(t, m, 20, 50)
	testkit.Eventually(t, func() bool { return r.Accepted().Samples == 20*50 }, "everything arrives")
	stop()
	requireAllInOrder(t, r, 20, 50)
	// Every failed body was later sent again byte for byte and accepted
	// once; no body was accepted twice.
	bodies, accepted := bodiesOf(r)
	require.Greater(t, len(bodies), 2*len(accepted))
	for i, h := range bodies {
		require.Contains(t, accepted, h, "request %d was never resent identically", i)
	}
	for h, n := range accepted {
		require.Equal(t, 1, n, "body %x accepted %d times", h[:4], n)
	}
}

// TestManagerDropsRejected: a 400 is not retried; the batch is dropped,
// and its positions no longer hold the WAL back.
func TestManagerDropsRejected(t *testing.T) {
	r := testkit.NewReceiver(t)
	r.Respond(func(req *testkit.Request) testkit.Reply {
		switch req.N {
		case 1, 2:
			return testkit.Reply{Status: http.StatusBadRequest}
		case 3:
			return testkit.Reply{Status: http.StatusConflict}
		}
		return testkit.Reply{}
	})
	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 1
	reg := prometheus.NewRegistry()
	var logs lockedBuffer
	m, stop := runManager(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Sender: newClient(t, r.URL),
		Metrics: queue.NewMetrics(reg), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	feed(t, m, 10, 100)
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending && r.Accepted().Samples > 0 }, "all finished")
	stop()
	require.Equal(t, 10*100-300, r.Accepted().Samples, "exactly the first three batches (100 samples each) are dropped")
	require.Equal(t, 300.0, testkit.Metric(t, reg, "prometheus_remote_storage_samples_failed_total"))
	require.Equal(t, 2.0, testkit.Metric(t, reg, "walship_remote_storage_requests_refused_total", "reason", "400"))
	require.Equal(t, 1.0, testkit.Metric(t, reg, "walship_remote_storage_requests_refused_total", "reason", "409"))
	require.Equal(t, 1, strings.Count(logs.String(), "refused requests"), "a burst is logged once:\n%s", logs.String())
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestManagerReshards: a slow endpoint under load makes the queue add
// shards; when the load stops it goes back to min_shards. Nothing is lost,
// duplicated or reordered across the reshards.
func TestManagerReshards(t *testing.T) {
	r := testkit.NewReceiver(t)
	r.Respond(func(*testkit.Request) testkit.Reply { return testkit.Reply{Delay: 20 * time.Millisecond} }) // each request takes this long
	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 8
	reg := prometheus.NewRegistry()
	m, _ := runManagerEvery(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Sender: newClient(t, r.URL), Metrics: queue.NewMetrics(reg)}, 50*time.Millisecond)

	shards := func() float64 { return testkit.Metric(t, reg, "prometheus_remote_storage_shards") }
	const nSeries = 100
	scrapes := 0
	for shards() < 2 {
		feedScrapes(t, m, nSeries, scrapes, scrapes+10)
		scrapes += 10
		require.Less(t, scrapes, 100_000, "never resharded up")
	}
	testkit.Eventually(t, func() bool { return r.Accepted().Samples == nSeries*scrapes }, "everything arrives")
	testkit.Eventually(t, func() bool { return shards() == 1 }, "back to min_shards when idle")
	requireAllInOrder(t, r, nSeries, scrapes)
}

// TestManagerCatchesUpInOneStep: after an outage the samples read from the
// WAL are ten minutes old and the shards are full; the first reshard goes
// from one shard to max_shards at once (not a quarter more per interval),
// and nothing is lost, duplicated or reordered.
func TestManagerCatchesUpInOneStep(t *testing.T) {
	r := testkit.NewReceiver(t)
	var down atomic.Bool
	down.Store(true)
	r.Respond(func(*testkit.Request) testkit.Reply {
		if down.Load() {
			return testkit.Reply{Status: http.StatusServiceUnavailable, Delay: 20 * time.Millisecond}
		}
		return testkit.Reply{Delay: 20 * time.Millisecond}
	})
	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 8
	reg := prometheus.NewRegistry()
	var logs lockedBuffer
	m, _ := runManagerEvery(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Sender: newClient(t, r.URL),
		Metrics: queue.NewMetrics(reg), Logger: slog.New(slog.NewTextHandler(&logs, nil))}, 100*time.Millisecond)

	const nSeries = 100
	series := make([]record.RefSeries, nSeries)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "m", "i", fmt.Sprint(i))}
	}
	m.StoreSeries(series, 0)
	// The feeder hands over scrapes of ten minutes ago, one millisecond
	// apart, as a watcher reading a backlog does, until told to stop.
	oldest := time.Now().Add(-10 * time.Minute).UnixMilli()
	stopFeeding, fed := make(chan struct{}), make(chan int)
	go func() {
		sc := 0
		defer func() { fed <- sc }()
		for ; ; sc++ {
			samples := make([]record.RefSample, nSeries)
			for i := range samples {
				samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: oldest + int64(sc), V: float64(sc)}
			}
			at := record.Span{Start: record.Position{Offset: int64(sc) * 100}, End: record.Position{Offset: int64(sc)*100 + 100}}
			for len(samples) > 0 {
				n := m.AppendSamples(samples, at)
				samples = samples[n:]
				if len(samples) > 0 {
					select {
					case <-m.Ready():
					case <-time.After(10 * time.Second): // a guard: Ready must come
						t.Error("the queue never had room again")
						return
					}
				}
			}
			select {
			case <-stopFeeding:
				sc++
				return
			default:
			}
		}
	}()
	testkit.Eventually(t, func() bool {
		// Long enough (several update intervals) for the average incoming
		// rate of the first interval to fade: it falls while nothing moves.
		return len(r.Requests()) >= 30 && testkit.Metric(t, reg, "prometheus_remote_storage_enqueue_retries_total") > 0
	}, "the outage fills the shard")
	down.Store(false)
	shards := func() float64 { return testkit.Metric(t, reg, "prometheus_remote_storage_shards") }
	testkit.Eventually(t, func() bool { return shards() > 1 }, "resharded up after the outage")
	close(stopFeeding)
	scrapes := <-fed
	testkit.Eventually(t, func() bool { return r.Accepted().Samples == nSeries*scrapes }, "everything arrives")
	for key, ss := range r.Samples() {
		for i, s := range ss {
			require.Equal(t, oldest+int64(i), s.Timestamp, "%s sample %d out of order or duplicated", key, i)
		}
	}
	first := regexp.MustCompile(`Remote storage resharding.* from=(\d+) to=(\d+)`).FindStringSubmatch(logs.String())
	require.NotNil(t, first, "no resharding logged:\n%s", logs.String())
	require.Equal(t, []string{"1", "8"}, first[1:], "the first reshard after the outage goes to max_shards")
}

// feedScrapes appends scrapes [from, to) of nSeries series.
func feedScrapes(t *testing.T, m *queue.Manager, nSeries, from, to int) {
	feedLabels(t, m, nSeries, from, to, func(i int) labels.Labels { return labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)) })
}

// feedLabels appends scrapes [from, to) of nSeries series, series i
// labelled as label(i) says (stored when from is 0).
func feedLabels(t *testing.T, m *queue.Manager, nSeries, from, to int, label func(i int) labels.Labels) {
	if from == 0 {
		series := make([]record.RefSeries, nSeries)
		for i := range series {
			series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: label(i)}
		}
		m.StoreSeries(series, 0)
	}
	for sc := from; sc < to; sc++ {
		samples := make([]record.RefSample, nSeries)
		for i := range samples {
			samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: int64(sc) * 1000, V: float64(sc)}
		}
		appendAll(m, samples, scrapeSpan(sc))
	}
}

// scrapeSpan is where scrape sc's record sits in a test's log.
func scrapeSpan(sc int) record.Span {
	return record.Span{Start: record.Position{Offset: int64(sc) * 100}, End: record.Position{Offset: int64(sc)*100 + 100}}
}

// appendAll appends samples as the watcher does, waiting on Ready when
// full (and looking again every second).
func appendAll(m *queue.Manager, samples []record.RefSample, at record.Span) {
	for len(samples) > 0 {
		samples = samples[m.AppendSamples(samples, at):]
		if len(samples) > 0 {
			select {
			case <-m.Ready():
			case <-time.After(time.Second):
			}
		}
	}
}

// TestManagerAccountsForEverySample: every sample handed over ends as sent,
// failed (refused by the endpoint), or dropped with a reason (its series was
// relabelled away or is unknown, or it is older than sample_age_limit), and
// the counters add up to what was handed over.
func TestManagerAccountsForEverySample(t *testing.T) {
	r := testkit.NewReceiver(t)
	r.Respond(func(req *testkit.Request) testkit.Reply {
		if req.N == 2 {
			return testkit.Reply{Status: http.StatusBadRequest}
		}
		return testkit.Reply{}
	})
	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 1
	qc.SampleAgeLimit = model.Duration(time.Hour)
	reg := prometheus.NewRegistry()
	now := time.Unix(100_000, 0)
	drop := &relabel.Config{SourceLabels: model.LabelNames{"i"}, Regex: relabel.MustNewRegexp("3"), Action: relabel.Drop, NameValidationScheme: model.UTF8Validation}
	m, _ := runManagerEvery(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Sender: newClient(t, r.URL), Metrics: queue.NewMetrics(reg),
		RelabelConfigs: []*relabel.Config{drop}, Now: func() time.Time { return now }}, 10*time.Millisecond)

	series := make([]record.RefSeries, 10)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "m", "i", fmt.Sprint(i))}
	}
	m.StoreSeries(series, 0)
	handed := 0
	for sc := 0; sc < 200; sc++ {
		ts := now.Add(-2 * time.Hour).UnixMilli() // the first 20 scrapes are too old
		if sc >= 20 {
			ts = now.UnixMilli() + int64(sc)
		}
		samples := make([]record.RefSample, 0, 11)
		for i := range series {
			samples = append(samples, record.RefSample{Ref: series[i].Ref, T: ts, V: 1})
		}
		samples = append(samples, record.RefSample{Ref: 99, T: ts, V: 1}) // never stored
		handed += len(samples)
		at := record.Span{Start: record.Position{Offset: int64(sc)}, End: record.Position{Offset: int64(sc) + 1}}
		for len(samples) > 0 {
			n := m.AppendSamples(samples, at)
			samples = samples[n:]
			if len(samples) > 0 {
				<-m.Ready()
			}
		}
	}
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "nothing pending")
	testkit.Eventually(t, func() bool { return testkit.Metric(t, reg, "prometheus_remote_storage_samples_pending") == 0 }, "pending gauge updated")

	sent := testkit.Metric(t, reg, "prometheus_remote_storage_samples_total")
	failed := testkit.Metric(t, reg, "prometheus_remote_storage_samples_failed_total")
	droppedSeries := testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total", "reason", "dropped_series")
	unknown := testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total", "reason", "unintentionally_dropped_series")
	tooOld := testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total", "reason", "too_old")
	require.Equal(t, 200.0, unknown)
	require.Equal(t, 200.0, droppedSeries)
	require.Equal(t, 20.0*9, tooOld, "the 9 kept series' first 20 scrapes")
	require.Equal(t, float64(qc.MaxSamplesPerSend), failed, "one request refused")
	require.Equal(t, float64(r.Accepted().Samples), sent)
	require.Equal(t, float64(handed), sent+failed+droppedSeries+unknown+tooOld, "every sample is accounted for")
	newest := float64(now.UnixMilli()+199) / 1000
	require.Equal(t, newest, testkit.Metric(t, reg, "prometheus_remote_storage_queue_highest_timestamp_seconds"))
	require.Equal(t, newest, testkit.Metric(t, reg, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"))
}

// TestManagerFlush: Flush sends everything queued and stops the queue; with
// the endpoint down it gives up at its deadline, says how much is unsent,
// and leaves it pending for the next run.
func TestManagerFlush(t *testing.T) {
	t.Run("everything sent", func(t *testing.T) {
		r := testkit.NewReceiver(t)
		qc := testQueueConfig()
		qc.BatchSendDeadline = model.Duration(time.Hour) // only Flush sends the partial batch
		m, err := queue.New(queue.Options{Name: "test", URL: r.URL, Config: qc, Sender: newClient(t, r.URL)})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- m.Run(context.Background()) }()
		feed(t, m, 30, 10) // 300 samples: three full batches of 100, none partial
		feed(t, m, 30, 1)  // and 30 more that only a flush sends
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, m.Flush(ctx))
		require.NoError(t, <-done, "Run returned")
		require.Equal(t, 330, r.Accepted().Samples)
		_, pending := m.LowestPending()
		require.False(t, pending)
	})
	t.Run("endpoint down", func(t *testing.T) {
		r := testkit.NewReceiver(t)
		r.Respond(testkit.Refuse(http.StatusServiceUnavailable))
		m, err := queue.New(queue.Options{Name: "test", URL: r.URL, Config: testQueueConfig(), Sender: newClient(t, r.URL)})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- m.Run(context.Background()) }()
		feed(t, m, 30, 10)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err = m.Flush(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "300 samples, histograms and exemplars unsent")
		require.NoError(t, <-done, "Run returned")
		_, pending := m.LowestPending()
		require.True(t, pending, "what was not sent stays pending")
	})
}

// ageLimitedQueue is a one-shard queue with a sample_age_limit of one
// minute and a clock of its own, sending to an endpoint that answers 503
// until comeBack; its series 1 is {__name__="a"}.
type ageLimitedQueue struct {
	m     *queue.Manager
	stop  func()
	reg   *prometheus.Registry
	clock atomic.Int64 // the queue's time, in ns
	mu    sync.Mutex
	down  bool // the endpoint answers 503; guarded by mu
}

func (q *ageLimitedQueue) now() time.Time { return time.Unix(0, q.clock.Load()) }

// comeBack ends the endpoint's outage.
func (q *ageLimitedQueue) comeBack() {
	q.mu.Lock()
	q.down = false
	q.mu.Unlock()
}

// runAgeLimited runs an ageLimitedQueue against r with batches of batch
// samples and a buffer of capacity (the test default when 0).
func runAgeLimited(t *testing.T, r *testkit.Receiver, batch, capacity int) *ageLimitedQueue {
	q := &ageLimitedQueue{reg: prometheus.NewRegistry(), down: true}
	q.clock.Store(time.Unix(1000, 0).UnixNano())
	r.Respond(func(*testkit.Request) testkit.Reply {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.down {
			return testkit.Reply{Status: http.StatusServiceUnavailable}
		}
		return testkit.Reply{}
	})
	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 1
	qc.MaxSamplesPerSend = batch
	if capacity > 0 {
		qc.Capacity = capacity
	}
	qc.SampleAgeLimit = model.Duration(time.Minute)
	q.m, q.stop = runManager(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Sender: newClient(t, r.URL),
		Metrics: queue.NewMetrics(q.reg), Now: q.now})
	q.m.StoreSeries([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "a")}}, 0)
	return q
}

// TestManagerAgeLimitOnRetries: samples that grow older than
// sample_age_limit while the endpoint is down leave the batch before the
// next retry, counted as dropped (too_old); younger ones are still sent.
func TestManagerAgeLimitOnRetries(t *testing.T) {
	r := testkit.NewReceiver(t)
	q := runAgeLimited(t, r, 20, 0)
	m, reg, now := q.m, q.reg, q.now

	// 10 samples stamped now-50s and 10 stamped now: one batch of 20.
	samples := make([]record.RefSample, 20)
	for i := range samples {
		ts := now().Add(-50 * time.Second).UnixMilli()
		if i >= 10 {
			ts = now().UnixMilli()
		}
		samples[i] = record.RefSample{Ref: 1, T: ts + int64(i), V: 1}
	}
	for m.AppendSamples(samples, record.Span{End: record.Position{Offset: 1}}) == 0 {
		<-m.Ready() // the shards are starting
	}
	testkit.Eventually(t, func() bool { return testkit.Metric(t, reg, "prometheus_remote_storage_samples_retried_total") > 0 }, "retrying")

	q.clock.Add(int64(30 * time.Second)) // the first ten are now 80 s old
	// 30 more samples retried (20 + 10 or 10 + 10 + 10): at least one
	// retry was prepared after the clock moved, so the batch was filtered.
	retried := testkit.Metric(t, reg, "prometheus_remote_storage_samples_retried_total")
	testkit.Eventually(t, func() bool {
		return testkit.Metric(t, reg, "prometheus_remote_storage_samples_retried_total") >= retried+30
	}, "retried after the clock moved")
	q.comeBack()
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "finished")
	q.stop()
	require.Equal(t, 10, r.Accepted().Samples, "the young half is sent")
	require.Equal(t, 10.0, testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total", "reason", "too_old"))
}

// TestManagerAgeLimitBeforeFirstAttempt: batches that wait while the shard
// retries another through an outage (one built ahead, one still in the
// buffer) are held against sample_age_limit before their first attempt:
// when the endpoint comes back, none of their samples, too old by then,
// is sent; they count as dropped (too_old). Fresh samples after them are
// sent.
func TestManagerAgeLimitBeforeFirstAttempt(t *testing.T) {
	r := testkit.NewReceiver(t)
	q := runAgeLimited(t, r, 10, 30)
	m, reg, now := q.m, q.reg, q.now
	stamped := func(from int64, n int) []record.RefSample {
		samples := make([]record.RefSample, n)
		for i := range samples {
			samples[i] = record.RefSample{Ref: 1, T: from + int64(i), V: 1}
		}
		return samples
	}

	// One record of three batches, A, B and C, stamped now: the shard
	// retries A, builds B meanwhile, and C waits in the buffer.
	base := now().UnixMilli()
	old := stamped(base, 30)
	testkit.Eventually(t, func() bool {
		n := m.AppendSamples(old, record.Span{End: record.Position{Offset: 1}})
		require.True(t, n == 0 || n == len(old), "%d of %d samples queued", n, len(old))
		return n == len(old)
	}, "the queue takes samples")
	testkit.Eventually(t, func() bool { return testkit.Metric(t, reg, "prometheus_remote_storage_samples_retried_total") > 0 }, "retrying")

	q.clock.Add(int64(2 * time.Minute)) // all 30 are too old now
	q.comeBack()
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "A, B and C finished")
	fresh := stamped(now().UnixMilli(), 10)
	appendAll(m, fresh, record.Span{Start: record.Position{Offset: 1}, End: record.Position{Offset: 2}})
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "the fresh samples finished")
	q.stop()

	// A may have gone through: an attempt on its way when the endpoint came
	// back was accepted. B and C never were attempted.
	got := r.Samples()[`{__name__="a"}`]
	sentOld := 0
	for _, s := range got {
		require.False(t, s.Timestamp >= base+10 && s.Timestamp < base+30, "sample at %d of batch B or C sent though too old", s.Timestamp)
		if s.Timestamp < base+10 {
			sentOld++
		}
	}
	require.Equal(t, sentOld+len(fresh), len(got), "every fresh sample sent")
	require.Equal(t, float64(len(old)-sentOld), testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total", "reason", "too_old"))
}

// TestManagerAgeLimitOnRetriesOfAPart: a batch sent in parts (its request
// was refused as too large) whose first part drops samples grown too old
// while it was retried sends its second part as a request of its own:
// every young sample arrives once, the old ones count as dropped.
func TestManagerAgeLimitOnRetriesOfAPart(t *testing.T) {
	r := testkit.NewReceiver(t)
	q := runAgeLimited(t, r, 200, 0)
	m, reg, now := q.m, q.reg, q.now
	r.Respond(func(req *testkit.Request) testkit.Reply {
		switch req.N {
		case 1: // the whole batch
			return testkit.Reply{Status: http.StatusRequestEntityTooLarge}
		case 2: // its first half: the old samples grow too old meanwhile
			q.clock.Add(int64(30 * time.Second))
			return testkit.Reply{Status: http.StatusServiceUnavailable}
		}
		return testkit.Reply{}
	})

	// 50 samples stamped now-50s, then 150 stamped now; values that do not
	// compress, so that the refused request is large enough to split.
	samples := make([]record.RefSample, 200)
	for i := range samples {
		ts := now().UnixMilli()
		if i < 50 {
			ts = now().Add(-50 * time.Second).UnixMilli()
		}
		samples[i] = record.RefSample{Ref: 1, T: ts + int64(i), V: float64(i) * math.Pi * 1e9}
	}
	for m.AppendSamples(samples, record.Span{End: record.Position{Offset: 1}}) == 0 {
		<-m.Ready() // the shards are starting
	}
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "finished")
	q.stop()
	for key, n := range r.Seen() {
		require.Equal(t, 1, n, "sample %s arrived %d times", key, n)
	}
	require.Equal(t, 150, r.Distinct(), "every young sample arrives")
	require.Equal(t, 50.0, testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total", "reason", "too_old"))
	require.Len(t, r.Requests(), 4, "the batch, its first half twice, its second half")
}

// TestManagerCountsWhatTheEndpointWrote: over RW2 the endpoint says how
// many samples it wrote. A 2xx that wrote fewer than were sent counts the
// rest as failed; a 400 that wrote part of the request (a partial write)
// counts that part as sent. sent + failed stays what was handed over.
func TestManagerCountsWhatTheEndpointWrote(t *testing.T) {
	srv := testkit.NewReceiver(t)
	written := func(samples string) http.Header {
		return http.Header{"X-Prometheus-Remote-Write-Samples-Written": {samples},
			"X-Prometheus-Remote-Write-Histograms-Written": {"0"}, "X-Prometheus-Remote-Write-Exemplars-Written": {"0"}}
	}
	srv.Respond(func(req *testkit.Request) testkit.Reply {
		switch req.N {
		case 1: // accepted, 9 of 10 written
			return testkit.Reply{Header: written("9")}
		case 2: // refused, 6 of 10 written
			return testkit.Reply{Status: http.StatusBadRequest, Header: written("6")}
		default: // accepted, the 10 written
			return testkit.Reply{}
		}
	})

	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 1
	qc.MaxSamplesPerSend = 10
	reg := prometheus.NewRegistry()
	m, stop := runManager(t, queue.Options{Name: "test", URL: srv.URL, Config: qc, Protocol: queue.RW2,
		Sender: newClient(t, srv.URL), Metrics: queue.NewMetrics(reg)})
	feed(t, m, 10, 3) // three requests of 10 samples
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "all finished")
	stop()
	require.Equal(t, 9.0+6+10, testkit.Metric(t, reg, "prometheus_remote_storage_samples_total"))
	require.Equal(t, 1.0+4, testkit.Metric(t, reg, "prometheus_remote_storage_samples_failed_total"))
}

// keepingSender accepts every request but keeps its body, as an HTTP
// transport still writing a body after the endpoint answered does, and
// says so (BodyInUse). It remembers a copy of each body as it was sent.
type keepingSender struct {
	mu    sync.Mutex
	kept  [][]byte // the bodies as Send saw them (the caller's memory)
	sent  [][]byte // copies taken during Send
	count int
}

func (k *keepingSender) Send(_ context.Context, req *queue.Request, _ int) (queue.Written, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kept = append(k.kept, req.Body)
	k.sent = append(k.sent, bytes.Clone(req.Body))
	k.count++
	req.BodyInUse = true
	return queue.Written{}, nil
}

// TestManagerLeavesBodiesInUse: a body the Sender may still read is never
// written again: every kept body still holds the bytes it was sent with
// after many more batches were encoded.
func TestManagerLeavesBodiesInUse(t *testing.T) {
	k := &keepingSender{}
	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 1
	m, stop := runManager(t, queue.Options{Name: "test", URL: "http://127.0.0.1:1/", Config: qc, Sender: k})
	feed(t, m, 50, 40)
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "everything acknowledged")
	stop()
	k.mu.Lock()
	defer k.mu.Unlock()
	require.Greater(t, k.count, 10)
	for i := range k.kept {
		require.Equal(t, k.sent[i], k.kept[i], "body %d was written into after Send said it is in use", i)
	}
}
