package queue_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
)

// TestRW1MetadataRequests: an RW1 queue sends the WAL's metadata per
// metadata_config, by metric name, in requests of at most
// max_samples_per_send entries; a request that fails is resent with the
// same bytes; what arrives is what the WAL said.
func TestRW1MetadataRequests(t *testing.T) {
	r := newReceiver(t)
	r.fail = func(n int) int {
		if n == 1 {
			return 503
		}
		return 0
	}
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

	eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.metadata) == len(types)
	}, "every family's metadata arrives")
	r.mu.Lock()
	defer r.mu.Unlock()
	want := []prompb.MetricMetadata_MetricType{prompb.MetricMetadata_COUNTER, prompb.MetricMetadata_GAUGE,
		prompb.MetricMetadata_HISTOGRAM, prompb.MetricMetadata_SUMMARY, prompb.MetricMetadata_UNKNOWN}
	for i := range types {
		got := r.metadata[fmt.Sprintf("metric_%d", i)]
		require.Equal(t, want[i], got.Type)
		require.Equal(t, fmt.Sprintf("Help of %d.", i), got.Help)
		require.Equal(t, "seconds", got.Unit)
	}
	require.Equal(t, r.bodies[0], r.bodies[1], "the failed request was resent as the same bytes")
	require.Equal(t, sha256.Size, len(r.bodies[0]))
}
