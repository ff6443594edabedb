package queue_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
)

// sizeLimited makes r refuse with 413 every RW1 request of more than limit
// samples while refusing() says so, counting the refusals in refused.
func sizeLimited(t *testing.T, r *testkit.Receiver, limit int, refusing func() bool, refused *int) {
	r.Respond(func(req *testkit.Request) testkit.Reply {
		require.NoError(t, req.Err)
		if len(req.Series) <= limit || !refusing() {
			return testkit.Reply{}
		}
		*refused++
		return testkit.Reply{Status: http.StatusRequestEntityTooLarge}
	})
}

// feedPods is feedScrapes with series whose labels do not compress away
// (about 150 bytes of a request each, as real series take): a request
// of 12 samples is over 1 KiB, one of 6 under it.
func feedPods(t *testing.T, m *queue.Manager, nSeries, from, to int) {
	feedLabels(t, m, nSeries, from, to, func(i int) labels.Labels {
		h := func(k int) uint64 { // splitmix64 of (series, k)
			z := uint64(i*16+k) + 0x9e3779b97f4a7c15
			z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
			z = (z ^ z>>27) * 0x94d049bb133111eb
			return z ^ z>>31
		}
		return labels.FromStrings("__name__", "m", "pod", fmt.Sprintf("api-%x", h(0)), "uid", fmt.Sprintf("%x%x%x%x", h(1), h(2), h(3), h(4)))
	})
}

// runOneShard runs a queue of one shard and batches of 100 sending to r,
// logging into the buffer it returns.
func runOneShard(t *testing.T, r *testkit.Receiver) (*queue.Manager, func(), *prometheus.Registry, *lockedBuffer) {
	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 1
	qc.MaxSamplesPerSend = 100
	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	m, stop := runManager(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Sender: newClient(t, r.URL), Metrics: queue.NewMetrics(reg),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	return m, stop, reg, logs
}

// requireAccounted checks that every one of handed samples ended as sent,
// failed or dropped, and returns how many were dropped as too large.
func requireAccounted(t *testing.T, m *queue.Manager, reg *prometheus.Registry, handed int) float64 {
	t.Helper()
	_, pending := m.LowestPending()
	require.False(t, pending)
	sent := testkit.Metric(t, reg, "prometheus_remote_storage_samples_total")
	failed := testkit.Metric(t, reg, "prometheus_remote_storage_samples_failed_total")
	dropped := testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total")
	require.Equal(t, float64(handed), sent+failed+dropped, "sent %v + failed %v + dropped %v", sent, failed, dropped)
	return testkit.Metric(t, reg, "prometheus_remote_storage_samples_dropped_total", "reason", "too_large")
}

// TestManagerTooLargeLearnsSize: an endpoint that takes at most 30 samples
// a request gets each refused request's batch in smaller requests, and the
// queue keeps the smaller size for the batches after it, so that they are
// not refused again; every sample arrives once, none is dropped.
//
// With max_samples_per_send 100 (one shard, five batches of 100): the first
// batch is refused at 100 and 50 samples and goes as four requests of 25;
// the second as four of 25; in the third, after ten requests accepted at
// 25, the size grows by a quarter to 31, is refused once, and the rest goes
// in requests of 15 (15, 15, 15, 5); the fourth goes as six of 15 and one
// of 10, after which the size grows to 18, and the fifth as five of 18 and
// one of 10. Three refused requests in all, where halving each batch
// without learning cost ten (and upstream drops all five batches).
func TestManagerTooLargeLearnsSize(t *testing.T) {
	r := testkit.NewReceiver(t)
	refused := 0
	sizeLimited(t, r, 30, func() bool { return true }, &refused)
	m, stop, reg, _ := runOneShard(t, r)
	feedPods(t, m, 100, 0, 5)
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "all finished")
	stop()

	requireAllInOrder(t, r, 100, 5)
	require.Zero(t, requireAccounted(t, m, reg, 500))
	require.Equal(t, 500.0, testkit.Metric(t, reg, "prometheus_remote_storage_samples_total"))
	require.Equal(t, 3, refused, "refused requests")
	require.Equal(t, 6+4+7+7+6, len(r.Requests()), "requests")
	require.Equal(t, 18.0, testkit.Metric(t, reg, "prometheus_remote_storage_max_samples_per_send"), "the learned size")
}

// TestManagerTooLargeGrowsBack: once the endpoint takes large requests
// again, the learned size grows back to max_samples_per_send while
// requests are accepted, and the queue says so.
func TestManagerTooLargeGrowsBack(t *testing.T) {
	r := testkit.NewReceiver(t)
	refused := 0
	sizeLimited(t, r, 30, func() bool { return refused < 2 }, &refused) // the first batch's 100 and 50
	m, stop, reg, logs := runOneShard(t, r)
	feedPods(t, m, 100, 0, 2)
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "the first batches finished")
	require.Equal(t, 25.0, testkit.Metric(t, reg, "prometheus_remote_storage_max_samples_per_send"), "the size after two refusals")
	require.Contains(t, logs.String(), "sending smaller requests from now on")

	// 25 → 31 → 38 → 47 → 58 → 72 → 90 → 100, ten accepted requests a step.
	feedPods(t, m, 100, 2, 40)
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "all finished")
	stop()
	requireAllInOrder(t, r, 100, 40)
	require.Zero(t, requireAccounted(t, m, reg, 4000))
	require.Equal(t, 100.0, testkit.Metric(t, reg, "prometheus_remote_storage_max_samples_per_send"), "back to max_samples_per_send")
	require.Contains(t, logs.String(), "accepts requests of max_samples_per_send again")
	require.Equal(t, 2, refused)
}

// TestManagerTooLargeRefusingEverything: an endpoint that refuses every
// request as too large gets at most three requests per batch (the batch,
// then a half and a quarter of it), and one per batch once the learned
// size makes requests too small for their size to be the reason (under
// 1 KiB: see feedPods). Every sample is then dropped and counted with reason too_large.
func TestManagerTooLargeRefusingEverything(t *testing.T) {
	r := testkit.NewReceiver(t)
	r.Respond(testkit.Refuse(http.StatusRequestEntityTooLarge))
	m, stop, reg, logs := runOneShard(t, r)

	const nSeries, scrapes = 100, 10
	feedPods(t, m, nSeries, 0, scrapes)
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "all finished")
	stop()

	require.Equal(t, float64(nSeries*scrapes), requireAccounted(t, m, reg, nSeries*scrapes), "every sample dropped as too large")
	require.Equal(t, 3+2+(scrapes-2), len(r.Requests()), "batch 1: 100, 50 and 25 samples; batch 2: 12 and 6 (under 1 KiB); the others: 6")
	require.Equal(t, float64(scrapes), testkit.Metric(t, reg, "walship_remote_storage_requests_refused_total", "reason", "413"),
		"one request refused for good per batch")
	require.Equal(t, 6.0, testkit.Metric(t, reg, "prometheus_remote_storage_max_samples_per_send"))
	require.Equal(t, 1, strings.Count(logs.String(), "the rest of its batch is dropped"), "a burst is logged once")
}
