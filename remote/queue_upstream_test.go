package remote

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
)

// runQueue starts a queue of the given protocol sending through a Client
// to url, its metrics in the registry it returns.
func runQueue(t *testing.T, rawURL string, proto queue.Protocol) (*queue.Manager, *prometheus.Registry) {
	c := newTestClient(t, testConfig(t, rawURL), ClientOptions{})
	qc := config.DefaultQueueConfig
	qc.BatchSendDeadline = model.Duration(10 * time.Millisecond)
	qc.MaxSamplesPerSend = 500
	reg := prometheus.NewRegistry()
	q := startQueue(t, queue.Options{Name: "up", URL: rawURL, Config: qc, Protocol: proto, Sender: c, Metrics: queue.NewMetrics(reg)})
	return q, reg
}

// startQueue runs a queue made from opts until the test ends.
func startQueue(t *testing.T, opts queue.Options) *queue.Manager {
	t.Helper()
	q, err := queue.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return q
}

// feedAll hands the queue nSeries series, scrapes float samples each, one
// integer histogram per scrape on an extra series and one exemplar per
// scrape on the first series, waiting when full.
func feedAll(t *testing.T, q *queue.Manager, nSeries, scrapes int, base int64) {
	series := make([]record.RefSeries, nSeries+1)
	for i := range nSeries {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "up", "instance", fmt.Sprint(i))}
	}
	series[nSeries] = record.RefSeries{Ref: record.Ref(nSeries + 1), Labels: labels.FromStrings("__name__", "latency")}
	q.StoreSeries(series, 0)
	put := func(n func() int) {
		for n() == 0 {
			select {
			case <-q.Ready():
			case <-time.After(time.Second):
			}
		}
	}
	for sc := range scrapes {
		ts := base + int64(sc)*1000
		at := record.Span{Start: record.Position{Offset: int64(sc)}, End: record.Position{Offset: int64(sc) + 1}}
		samples := make([]record.RefSample, nSeries)
		for i := range samples {
			samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: ts, V: float64(sc)}
		}
		for len(samples) > 0 {
			put(func() int { n := q.AppendSamples(samples, at); samples = samples[n:]; return n })
		}
		h := []record.RefHistogramSample{{Ref: record.Ref(nSeries + 1), T: ts, H: &histogram.Histogram{
			Count: 3, Sum: 1.5, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{3}}}}
		put(func() int { return q.AppendHistograms(h, at) })
		e := []record.RefExemplar{{Ref: 1, T: ts, V: float64(sc), Labels: labels.FromStrings("trace_id", fmt.Sprint(sc))}}
		put(func() int { return q.AppendExemplars(e, at) })
	}
}

// TestQueueToUpstreamReceiver: every float sample, histogram and exemplar
// queued arrives at upstream's own remote-write handler with its labels, over RW1
// and RW2, and an RW2 queue facing an RW1-only receiver (415) falls back
// to RW1 and loses nothing.
func TestQueueToUpstreamReceiver(t *testing.T) {
	cases := []struct {
		name     string
		proto    queue.Protocol
		accepted []remoteapi.WriteMessageType
	}{
		{"rw1", queue.RW1, []remoteapi.WriteMessageType{remoteapi.WriteV1MessageType}},
		{"rw2", queue.RW2, []remoteapi.WriteMessageType{remoteapi.WriteV2MessageType}},
		{"rw2 falls back on 415", queue.RW2, []remoteapi.WriteMessageType{remoteapi.WriteV1MessageType}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := newUpstreamReceiver(t, c.accepted...)
			q, reg := runQueue(t, app.URL, c.proto)
			const nSeries, scrapes = 100, 30
			base := time.Now().Add(-time.Minute).UnixMilli()
			feedAll(t, q, nSeries, scrapes, base)
			// Over RW2 an exemplar travels in the entry of its series' sample,
			// since RW2 forbids entries with exemplars only: it joins the
			// sample while both wait (TestRW2ExemplarJoinsSampleAcrossBatches),
			// or, when the shard took the sample's batch in the instant
			// between the two records, the series' next sample
			// (TestRW2ExemplarNeverSentAlone). One more sample of the first
			// series carries the last scrape's exemplar if it waits.
			last := record.Span{Start: record.Position{Offset: scrapes}, End: record.Position{Offset: scrapes + 1}}
			require.Eventually(t, func() bool {
				return q.AppendSamples([]record.RefSample{{Ref: 1, T: base + scrapes*1000, V: scrapes}}, last) == 1
			}, 5*time.Second, time.Millisecond)
			require.Eventually(t, func() bool {
				samples, hists, _ := app.Snapshot()
				n := 0
				for _, s := range samples {
					n += len(s)
				}
				return n == nSeries*scrapes+1 && hists[`{__name__="latency"}`] == scrapes
			}, 20*time.Second, 2*time.Millisecond, "everything arrives")
			samples, _, _ := app.Snapshot()
			first := labels.FromStrings("__name__", "up", "instance", "0").String()
			require.Eventually(t, func() bool { _, _, ex := app.Snapshot(); return len(ex[first]) == scrapes }, 5*time.Second, time.Millisecond, "exemplars arrive")
			_, _, exemplars := app.Snapshot()
			for _, e := range exemplars[first] {
				var sc int
				_, err := fmt.Sscan(e.Labels.Get("trace_id"), &sc)
				require.NoError(t, err)
				require.Equal(t, base+int64(sc)*1000, e.Ts)
			}
			require.Len(t, samples, nSeries)
			for i := range nSeries {
				got := samples[labels.FromStrings("__name__", "up", "instance", fmt.Sprint(i)).String()]
				if i == 0 {
					require.Len(t, got, scrapes+1, "and the closing sample")
					got = got[:scrapes]
				} else {
					require.Len(t, got, scrapes)
				}
				for sc, s := range got {
					require.Equal(t, base+int64(sc)*1000, s.Timestamp)
					require.Equal(t, float64(sc), s.Value)
				}
			}
			require.Eventually(t, func() bool { _, pending := q.LowestPending(); return !pending }, 5*time.Second, time.Millisecond)
			_, _, exemplars = app.Snapshot()
			dropped := testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_dropped_total", "reason", "no_sample_in_request")
			require.Len(t, exemplars[first], scrapes, "every exemplar arrived")
			require.Zero(t, dropped)
		})
	}
}

// TestRW2ExemplarNeverSentAlone: over RW2 an exemplar travels in the entry
// of its series' sample or histogram (RW2 forbids entries with exemplars
// only, and upstream's receiver answers them with 400, failing everything
// else in the request). One whose sample went out in an earlier request
// waits for the series' next sample and arrives with it. Every item ends
// sent or dropped, counted as its own kind.
func TestRW2ExemplarNeverSentAlone(t *testing.T) {
	app := newUpstreamReceiver(t, remoteapi.WriteV2MessageType)
	c := newTestClient(t, testConfig(t, app.URL), ClientOptions{})
	reg := prometheus.NewRegistry()
	qc := config.DefaultQueueConfig
	qc.MinShards, qc.MaxShards = 1, 1
	qc.MaxSamplesPerSend = 8
	qc.BatchSendDeadline = model.Duration(time.Minute) // batches are cut by size only
	q := startQueue(t, queue.Options{Name: "ex", URL: app.URL, Config: qc, Protocol: queue.RW2, Sender: c, Metrics: queue.NewMetrics(reg)})

	// Series 1 is a counter, 2 a native histogram, 3 to 9 fill batches.
	requests := labels.FromStrings("__name__", "requests_total", "job", "api")
	latency := labels.FromStrings("__name__", "latency_seconds", "job", "api")
	filler := func(ref int) labels.Labels { return labels.FromStrings("__name__", "filler", "i", fmt.Sprint(ref)) }
	series := []record.RefSeries{{Ref: 1, Labels: requests}, {Ref: 2, Labels: latency}}
	for ref := 3; ref <= 9; ref++ {
		series = append(series, record.RefSeries{Ref: record.Ref(ref), Labels: filler(ref)})
	}
	q.StoreSeries(series, 0)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	offset := int64(0)
	// put hands over a record of n items, waiting while the queue has no room.
	put := func(n int, hand func(at record.Span) int) {
		t.Helper()
		offset++
		at := record.Span{Start: record.Position{Offset: offset}, End: record.Position{Offset: offset + 1}}
		deadline := time.After(5 * time.Second)
		for got := hand(at); got < n; got = hand(at) {
			require.Zero(t, got, "a record is taken whole here")
			select {
			case <-q.Ready():
			case <-deadline:
				t.Fatal("the queue never took the record")
			}
		}
	}
	settled := func() {
		t.Helper()
		require.Eventually(t, func() bool { _, pending := q.LowestPending(); return !pending }, 5*time.Second, time.Millisecond)
	}
	samplesOf := func(t int64, refs ...int) []record.RefSample {
		out := make([]record.RefSample, len(refs))
		for i, ref := range refs {
			out[i] = record.RefSample{Ref: record.Ref(ref), T: t, V: float64(ref)}
		}
		return out
	}
	trace := func(id string) labels.Labels { return labels.FromStrings("trace_id", id) }

	// Batch 1: eight samples, sent and acknowledged.
	put(8, func(at record.Span) int { return q.AppendSamples(samplesOf(ts, 1, 3, 4, 5, 6, 7, 8, 9), at) })
	settled()

	// Batch 2 (eight items again): a sample of series 1, a histogram of
	// series 2, five fillers, exemplars of series 1, 2 and 3, and then a
	// new sample of series 3. The exemplars of series 1 and 2 join their
	// sample and histogram as they are queued; series 3's sample went out
	// in batch 1, so its exemplar waits for the series' next sample.
	h := &histogram.Histogram{Count: 3, Sum: 1.5, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{3}}
	put(6, func(at record.Span) int { return q.AppendSamples(samplesOf(ts+1000, 1, 4, 5, 6, 7, 8), at) })
	put(1, func(at record.Span) int {
		return q.AppendHistograms([]record.RefHistogramSample{{Ref: 2, T: ts + 1000, H: h}}, at)
	})
	put(3, func(at record.Span) int {
		return q.AppendExemplars([]record.RefExemplar{
			{Ref: 3, T: ts, V: 0.5, Labels: trace("lone")},
			{Ref: 1, T: ts + 1000, V: 0.7, Labels: trace("with-sample")},
			{Ref: 2, T: ts + 1000, V: 0.3, Labels: trace("with-histogram")},
		}, at)
	})
	_, waiting := q.LowestPending()
	require.True(t, waiting, "the exemplar of series 3 waits, pending")
	put(1, func(at record.Span) int { return q.AppendSamples(samplesOf(ts+2000, 3), at) })
	settled()

	// A histogram and an exemplar of a series never stored count as
	// dropped histograms and exemplars, not samples.
	put(1, func(at record.Span) int {
		return q.AppendHistograms([]record.RefHistogramSample{{Ref: 99, T: ts, H: h}}, at)
	})
	put(1, func(at record.Span) int {
		return q.AppendExemplars([]record.RefExemplar{{Ref: 99, T: ts, V: 1, Labels: trace("unknown")}}, at)
	})
	settled()

	samples, hists, exemplars := app.Snapshot()
	require.Len(t, samples[requests.String()], 2, "series 1's samples arrive")
	for ref := 3; ref <= 9; ref++ {
		require.NotEmpty(t, samples[filler(ref).String()], "filler %d arrives", ref)
	}
	require.Equal(t, 1, hists[latency.String()], "the histogram arrives")
	got := map[string]float64{}
	for _, s := range []labels.Labels{requests, latency, filler(3)} {
		for _, e := range exemplars[s.String()] {
			got[e.Labels.Get("trace_id")] = e.Value
		}
	}
	require.Equal(t, map[string]float64{"with-sample": 0.7, "with-histogram": 0.3, "lone": 0.5}, got)

	require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_samples_failed_total"), "no request refused")
	require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_failed_total"))
	require.Equal(t, 15.0, testkit.Metric(t, reg, "prometheus_remote_storage_samples_total"))
	require.Equal(t, 1.0, testkit.Metric(t, reg, "prometheus_remote_storage_histograms_total"))
	require.Equal(t, 3.0, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_total"))
	require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_dropped_total", "reason", "no_sample_in_request"))
	require.Equal(t, 1.0, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_dropped_total", "reason", "unintentionally_dropped_series"))
	require.Equal(t, 1.0, testkit.Metric(t, reg, "prometheus_remote_storage_histograms_dropped_total", "reason", "unintentionally_dropped_series"))
	require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total"))
	require.Eventually(t, func() bool {
		return testkit.Metric(t, reg, "prometheus_remote_storage_samples_pending")+testkit.Metric(t, reg, "prometheus_remote_storage_histograms_pending")+
			testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_pending") == 0
	}, 5*time.Second, time.Millisecond, "nothing pending")
}

// TestRW2ExemplarLeftAloneOnRetry: a sample that grows older than
// sample_age_limit while its request is retried leaves the batch, and its
// series' exemplar, younger, cannot go on alone: it leaves with the sample
// (too_old), whether it joined the waiting sample or waited for it. The
// retry is accepted, not refused.
func TestRW2ExemplarLeftAloneOnRetry(t *testing.T) {
	for _, c := range []struct {
		name          string
		exemplarFirst bool
		reason        string
	}{
		{"joined the waiting sample", false, "too_old"},
		{"waited for the sample", true, "too_old"},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := newUpstreamReceiver(t, remoteapi.WriteV2MessageType)
			start := time.Now()
			var now atomic.Int64
			now.Store(start.UnixNano())
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1) == 1 {
					now.Add(int64(10 * time.Minute)) // the sample is now too old
					http.Error(w, "try again", http.StatusServiceUnavailable)
					return
				}
				app.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)

			reg := prometheus.NewRegistry()
			qc := config.DefaultQueueConfig
			qc.MinShards, qc.MaxShards = 1, 1
			qc.MaxSamplesPerSend = 2
			qc.BatchSendDeadline = model.Duration(time.Minute)
			qc.SampleAgeLimit = model.Duration(5 * time.Minute)
			client := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
			q := startQueue(t, queue.Options{Name: "ex", URL: srv.URL, Config: qc, Protocol: queue.RW2, Sender: client,
				Metrics: queue.NewMetrics(reg), Now: func() time.Time { return time.Unix(0, now.Load()) }})

			old := labels.FromStrings("__name__", "requests_total", "job", "old")
			young := labels.FromStrings("__name__", "requests_total", "job", "young")
			q.StoreSeries([]record.RefSeries{{Ref: 1, Labels: old}, {Ref: 2, Labels: young}}, 0)
			sampleT := start.Add(-time.Minute).UnixMilli()
			youngT := start.Add(9 * time.Minute).UnixMilli() // still within the limit after the clock moves
			exemplar := func(at record.Span) int {
				return q.AppendExemplars([]record.RefExemplar{{Ref: 1, T: youngT, V: 0.5, Labels: labels.FromStrings("trace_id", "x")}}, at)
			}
			hands := []func(record.Span) int{
				func(at record.Span) int { return q.AppendSamples([]record.RefSample{{Ref: 1, T: sampleT, V: 1}}, at) },
				exemplar,
				func(at record.Span) int { return q.AppendSamples([]record.RefSample{{Ref: 2, T: youngT, V: 2}}, at) },
			}
			if c.exemplarFirst {
				hands[0], hands[1] = hands[1], hands[0]
			}
			for i, hand := range hands {
				at := record.Span{Start: record.Position{Offset: int64(i)}, End: record.Position{Offset: int64(i) + 1}}
				require.Eventually(t, func() bool { return hand(at) == 1 }, 5*time.Second, time.Millisecond)
			}
			require.Eventually(t, func() bool { _, pending := q.LowestPending(); return !pending }, 10*time.Second, time.Millisecond)

			samples, _, exemplars := app.Snapshot()
			require.Len(t, samples[young.String()], 1, "the young sample arrives on the retry")
			require.Empty(t, samples[old.String()])
			require.Empty(t, exemplars[old.String()])
			require.EqualValues(t, 2, requests.Load(), "the first attempt and an accepted retry")
			require.Equal(t, 1.0, testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total", "reason", "too_old"))
			require.Equal(t, 1.0, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_dropped_total", "reason", c.reason))
			require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_total"))
			require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_samples_failed_total"))
		})
	}
}

// TestRW2ExemplarHeldExpires: an exemplar whose sample went out before it
// came, and whose series then has no sample for five minutes (it stopped),
// is dropped and counted as no_sample_in_request, and no longer holds the
// WAL position back. Until then it waits, pending.
func TestRW2ExemplarHeldExpires(t *testing.T) {
	app := newUpstreamReceiver(t, remoteapi.WriteV2MessageType)
	start := time.Now()
	var now atomic.Int64
	now.Store(start.UnixNano())
	reg := prometheus.NewRegistry()
	qc := config.DefaultQueueConfig
	qc.MinShards, qc.MaxShards = 1, 1
	qc.MaxSamplesPerSend = 1 // every sample goes out at once
	c := newTestClient(t, testConfig(t, app.URL), ClientOptions{})
	q := startQueue(t, queue.Options{Name: "ex", URL: app.URL, Config: qc, Protocol: queue.RW2, Sender: c,
		Metrics: queue.NewMetrics(reg), Now: func() time.Time { return time.Unix(0, now.Load()) }})
	stopped := labels.FromStrings("__name__", "requests_total", "job", "stopped")
	other := labels.FromStrings("__name__", "requests_total", "job", "other")
	q.StoreSeries([]record.RefSeries{{Ref: 1, Labels: stopped}, {Ref: 2, Labels: other}}, 0)

	offset := int64(0)
	put := func(hand func(record.Span) int) {
		t.Helper()
		offset++
		at := record.Span{Start: record.Position{Offset: offset}, End: record.Position{Offset: offset + 1}}
		require.Eventually(t, func() bool { return hand(at) == 1 }, 5*time.Second, time.Millisecond)
	}
	sample := func(ref int) func(record.Span) int {
		return func(at record.Span) int {
			return q.AppendSamples([]record.RefSample{{Ref: record.Ref(ref), T: start.UnixMilli() + offset, V: 1}}, at)
		}
	}
	sent := func(n float64) {
		t.Helper()
		require.Eventually(t, func() bool { return testkit.Metric(t, reg, "prometheus_remote_storage_samples_total") == n }, 5*time.Second, time.Millisecond)
	}
	put(sample(1))
	sent(1)
	put(func(at record.Span) int {
		return q.AppendExemplars([]record.RefExemplar{{Ref: 1, T: start.UnixMilli(), V: 0.5, Labels: labels.FromStrings("trace_id", "late")}}, at)
	})
	now.Add(int64(4 * time.Minute))
	put(sample(2))
	sent(2)
	_, pending := q.LowestPending()
	require.True(t, pending, "after four minutes the exemplar still waits")
	require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_dropped_total", "reason", "no_sample_in_request"))

	now.Add(int64(2 * time.Minute))
	put(sample(2))
	sent(3)
	require.Eventually(t, func() bool { _, pending := q.LowestPending(); return !pending }, 5*time.Second, time.Millisecond)
	require.Equal(t, 1.0, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_dropped_total", "reason", "no_sample_in_request"))
	require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_total"))
	_, _, exemplars := app.Snapshot()
	require.Empty(t, exemplars[stopped.String()])
}

// TestRW2ExemplarJoinsSampleAcrossBatches: a record of samples longer
// than a batch, then its exemplars, while the shard is busy sending: the
// batch boundary falls between a sample and its exemplar, and the exemplar
// still travels with it (it joined the sample while both were queued).
func TestRW2ExemplarJoinsSampleAcrossBatches(t *testing.T) {
	app := newUpstreamReceiver(t, remoteapi.WriteV2MessageType)
	inFirst, release := make(chan struct{}), make(chan struct{})
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			close(inFirst)
			<-release // the shard stays busy with the first batch
		}
		app.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	reg := prometheus.NewRegistry()
	qc := config.DefaultQueueConfig
	qc.MinShards, qc.MaxShards = 1, 1
	qc.MaxSamplesPerSend = 8
	qc.BatchSendDeadline = model.Duration(50 * time.Millisecond)
	c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
	q := startQueue(t, queue.Options{Name: "ex", URL: srv.URL, Config: qc, Protocol: queue.RW2, Sender: c, Metrics: queue.NewMetrics(reg)})

	const n = 20
	series := make([]record.RefSeries, n)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "latency_bucket", "le", fmt.Sprint(i))}
	}
	q.StoreSeries(series, 0)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	put := func(at int64, hand func(record.Span) int) {
		t.Helper()
		span := record.Span{Start: record.Position{Offset: at}, End: record.Position{Offset: at + 1}}
		require.Eventually(t, func() bool { return hand(span) > 0 }, 5*time.Second, time.Millisecond)
	}
	samplesAt := func(t int64, refs ...int) []record.RefSample {
		out := make([]record.RefSample, len(refs))
		for i, ref := range refs {
			out[i] = record.RefSample{Ref: record.Ref(ref), T: t, V: float64(ref)}
		}
		return out
	}
	// A first batch, held by the receiver.
	put(0, func(at record.Span) int { return q.AppendSamples(samplesAt(ts, 1, 2, 3, 4, 5, 6, 7, 8), at) })
	<-inFirst
	// One record of all 20 series (batches of 8, 8 and 4), then one
	// exemplar per series.
	all := make([]int, n)
	for i := range all {
		all[i] = i + 1
	}
	put(1, func(at record.Span) int { return q.AppendSamples(samplesAt(ts+1000, all...), at) })
	exemplars := make([]record.RefExemplar, n)
	for i := range exemplars {
		exemplars[i] = record.RefExemplar{Ref: record.Ref(i + 1), T: ts + 1000, V: 0.1, Labels: labels.FromStrings("trace_id", fmt.Sprint(i+1))}
	}
	put(2, func(at record.Span) int { return q.AppendExemplars(exemplars, at) })
	close(release)
	require.Eventually(t, func() bool { _, pending := q.LowestPending(); return !pending }, 5*time.Second, time.Millisecond)

	_, _, got := app.Snapshot()
	for _, s := range series {
		require.Len(t, got[s.Labels.String()], 1, "the exemplar of %s arrives", s.Labels)
	}
	require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_dropped_total"))
	require.Equal(t, float64(n), testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_total"))
	require.Zero(t, testkit.Metric(t, reg, "prometheus_remote_storage_samples_failed_total"))
}
