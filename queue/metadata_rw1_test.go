package queue_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
)

// TestRW1MetadataRequests: an RW1 queue sends the WAL's metadata per
// metadata_config, by metric name, in requests of at most
// max_samples_per_send entries; a request that fails is resent with the
// same bytes; what arrives is what the WAL said.
func TestRW1MetadataRequests(t *testing.T) {
	r := testkit.NewReceiver(t)
	r.Respond(func(req *testkit.Request) testkit.Reply {
		if req.N == 1 {
			return testkit.Reply{Status: 503}
		}
		return testkit.Reply{}
	})
	m, _ := runManager(t, queue.Options{
		Name: "test", URL: r.URL, Config: testQueueConfig(), Sender: newClient(t, r.URL),
		Metadata: config.MetadataConfig{Send: true, SendInterval: model.Duration(20 * time.Millisecond), MaxSamplesPerSend: 2},
	})

	types := []record.MetricType{record.Counter, record.Gauge, record.Histogram, record.Summary, record.UnknownMetricType}
	var series []record.RefSeries
	var meta []record.RefMetadata
	for i, typ := range types {
		series = append(series, record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", fmt.Sprintf("metric_%d", i), "job", "x")})
		meta = append(meta, record.RefMetadata{Ref: record.Ref(i + 1), Type: typ, Help: fmt.Sprintf("Help of %d.", i), Unit: "seconds"})
	}
	m.StoreSeries(series, 0)
	m.StoreMetadata(meta)

	testkit.Eventually(t, func() bool {
		return len(r.Metadata()) == len(types)
	}, "every family's metadata arrives")
	metadata := r.Metadata()
	want := []prompb.MetricMetadata_MetricType{prompb.MetricMetadata_COUNTER, prompb.MetricMetadata_GAUGE,
		prompb.MetricMetadata_HISTOGRAM, prompb.MetricMetadata_SUMMARY, prompb.MetricMetadata_UNKNOWN}
	for i := range types {
		got := metadata[fmt.Sprintf("metric_%d", i)]
		require.Equal(t, want[i], got.Type)
		require.Equal(t, fmt.Sprintf("Help of %d.", i), got.Help)
		require.Equal(t, "seconds", got.Unit)
	}
	bodies, _ := bodiesOf(r)
	require.Equal(t, bodies[0], bodies[1], "the failed request was resent as the same bytes")
	require.Equal(t, sha256.Size, len(bodies[0]))
}

// TestRW1MetadataFollowsSeries: once the last series of a metric name is
// forgotten (the WAL no longer holds it), its metadata is no longer sent;
// names with series left still are.
func TestRW1MetadataFollowsSeries(t *testing.T) {
	r := testkit.NewReceiver(t)
	m, _ := runManager(t, queue.Options{
		Name: "test", URL: r.URL, Config: testQueueConfig(), Sender: newClient(t, r.URL),
		Metadata: config.MetadataConfig{Send: true, SendInterval: model.Duration(10 * time.Millisecond), MaxSamplesPerSend: 10},
	})
	m.StoreSeries([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "gone_total", "job", "x")}}, 0)
	m.StoreSeries([]record.RefSeries{
		{Ref: 2, Labels: labels.FromStrings("__name__", "kept", "job", "x")},
		{Ref: 3, Labels: labels.FromStrings("__name__", "kept", "job", "y")},
	}, 1)
	m.StoreMetadata([]record.RefMetadata{
		{Ref: 1, Type: record.Counter, Help: "Gone."},
		{Ref: 2, Type: record.Gauge, Help: "Kept."},
		{Ref: 3, Type: record.Gauge, Help: "Kept."},
	})
	families := r.Metadata
	testkit.Eventually(t, func() bool { return len(families()) == 2 }, "both families' metadata arrives")

	m.SeriesReset(1) // series 1 was last stored from segment 0
	requests := func() int { return len(r.Requests()) }
	n := requests()
	testkit.Eventually(t, func() bool { return requests() >= n+2 }, "rounds started before the reset are over")
	r.Reset() // the metadata that arrived, and the requests counted
	n = requests()
	testkit.Eventually(t, func() bool { return requests() >= n+2 }, "two more rounds")
	got := families()
	require.Contains(t, got, "kept")
	require.NotContains(t, got, "gone_total", "no series of it is left")
}

// TestRW1MetadataSentOnFlush: a queue flushed before its first
// send_interval (a replay) sends its metadata as it flushes, after the
// samples.
func TestRW1MetadataSentOnFlush(t *testing.T) {
	r := testkit.NewReceiver(t)
	m, _ := runManager(t, queue.Options{
		Name: "test", URL: r.URL, Config: testQueueConfig(), Sender: newClient(t, r.URL),
		Metadata: config.MetadataConfig{Send: true, SendInterval: model.Duration(time.Hour), MaxSamplesPerSend: 10},
	})
	m.StoreSeries([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "x")}}, 0)
	m.StoreMetadata([]record.RefMetadata{{Ref: 1, Type: record.Gauge, Help: "Up."}})
	for m.AppendSamples([]record.RefSample{{Ref: 1, T: 1000, V: 1}}, record.Span{}) == 0 {
		<-m.Ready()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Flush(ctx))
	require.Equal(t, 1, r.Accepted().Samples)
	md := r.Metadata()
	require.Len(t, md, 1)
	require.Equal(t, prompb.MetricMetadata_GAUGE, md["up"].Type)
	require.Equal(t, "Up.", md["up"].Help)
}
