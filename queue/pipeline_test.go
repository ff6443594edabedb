package queue_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
)

// pipelineSeries is how many series the pipeline tests send: one batch of
// max_samples_per_send per scrape.
const pipelineSeries = 100

// sendHeld runs a one-shard queue of protocol proto, whose buffer holds two
// batches, against r, and r holds the shard's first request unanswered
// until the buffer took a second record of two batches besides the first
// record's two: that fits only once the shard took both of the first
// record's batches out of its buffer, the one on the wire and the next,
// built meanwhile. Then r answers, and sendHeld waits until all four
// scrapes arrived and were acknowledged, stops the queue and checks that
// every sample arrived once, in order. The queue's remote_timeout is
// longer than any wait here: the held request is never given up. With
// rw1Only, r answers RW2 requests 415, as an RW1-only receiver does.
func sendHeld(t *testing.T, r *testkit.Receiver, proto queue.Protocol, rw1Only bool) {
	arrived, released := make(chan struct{}), make(chan struct{})
	r.Respond(func(req *testkit.Request) testkit.Reply {
		var reply testkit.Reply
		if rw1Only {
			reply = testkit.RW1Only(req)
		}
		if req.N == 1 {
			close(arrived)
			reply.Wait = released
		}
		return reply
	})
	var once sync.Once
	release := func() { once.Do(func() { close(released) }) }
	t.Cleanup(release) // before the server closes, which waits for its handlers

	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 1
	qc.MaxSamplesPerSend, qc.Capacity = pipelineSeries, 2*pipelineSeries
	m, stop := runManager(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Protocol: proto,
		Sender: newClientTimeout(t, r.URL, time.Minute)})
	series := make([]record.RefSeries, pipelineSeries)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "m", "i", fmt.Sprint(i))}
	}
	m.StoreSeries(series, 0)

	// The first record goes in whole, once the queue runs: the shard
	// cannot take a batch of it before both are queued.
	first := twoScrapes(0)
	testkit.Eventually(t, func() bool {
		n := m.AppendSamples(first, scrapeSpan(0))
		require.True(t, n == 0 || n == len(first), "%d of %d samples queued", n, len(first))
		return n == len(first)
	}, "the queue takes samples")
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the first request never came")
	}
	second := twoScrapes(2)
	testkit.Eventually(t, func() bool {
		second = second[m.AppendSamples(second, scrapeSpan(2)):]
		return len(second) == 0
	}, "the next batch left the buffer while a request was on the wire")
	release()

	testkit.Eventually(t, func() bool { return r.Accepted().Samples == 4*pipelineSeries }, "everything arrives")
	testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "everything acknowledged")
	stop()
	requireAllInOrder(t, r, pipelineSeries, 4)
}

// twoScrapes is one record holding scrapes sc and sc+1 of every series:
// two batches.
func twoScrapes(sc int) []record.RefSample {
	samples := make([]record.RefSample, 0, 2*pipelineSeries)
	for _, s := range []int{sc, sc + 1} {
		for i := range pipelineSeries {
			samples = append(samples, record.RefSample{Ref: record.Ref(i + 1), T: int64(s) * 1000, V: float64(s)})
		}
	}
	return samples
}

// TestShardBuildsNextWhileOneIsOnTheWire: while the endpoint takes its time
// over a shard's request, the shard takes its next batch and builds the
// request, so the buffer has room again; still only one request of a shard
// is on the wire at a time, and every sample arrives once, in order.
func TestShardBuildsNextWhileOneIsOnTheWire(t *testing.T) {
	r := testkit.NewReceiver(t)
	sendHeld(t, r, queue.RW1, false)
	require.Equal(t, 1, r.MostInFlight(), "one request of a shard on the wire at a time")
	require.Equal(t, 4, len(r.Requests()), "one request per batch")
}

// TestShardRebuildsNextAfterFallBack: an RW2 queue's shard built its next
// request as RW2 while the first was on the wire; the endpoint answers
// that first one 415 (it only speaks RW1). The queue falls back, the first
// batch goes again as RW1, and so does the second: its RW2 body is built
// again, never sent.
func TestShardRebuildsNextAfterFallBack(t *testing.T) {
	r := testkit.NewReceiver(t)
	sendHeld(t, r, queue.RW2, true)
	require.Equal(t, []string{"2.0.0", "0.1.0", "0.1.0", "0.1.0", "0.1.0"}, versions(r),
		"one RW2 request (refused), then every batch once as RW1")
	require.Equal(t, 1, r.MostInFlight(), "one request of a shard on the wire at a time")
}

// versions returns the X-Prometheus-Remote-Write-Version of every request r
// got, in arrival order.
func versions(r *testkit.Receiver) []string {
	var out []string
	for _, ex := range r.Requests() {
		out = append(out, ex.Header.Get("X-Prometheus-Remote-Write-Version"))
	}
	return out
}
