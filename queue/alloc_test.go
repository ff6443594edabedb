package queue

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// discard is a Sender that accepts everything without sending: the
// allocation guard below measures the queue, not HTTP.
type discard struct{}

func (discard) Send(context.Context, *Request, int) (Written, error) { return Written{}, nil }

// TestHotPathAllocatesNothing: once warm, taking a record's 2000 samples
// into a shard, cutting the batch, encoding it once and compressing it
// allocates nothing.
func TestHotPathAllocatesNothing(t *testing.T) {
	qc := config.DefaultQueueConfig
	m, err := New(Options{Config: qc, Sender: discard{}})
	require.NoError(t, err)
	sh := newShard(m.shards.parts)
	m.shards.shards = []*shard{sh}

	const n = 2000
	series := make([]record.RefSeries, n)
	samples := make([]record.RefSample, n)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings(
			"__name__", "node_cpu_seconds_total", "cpu", fmt.Sprint(i%64), "mode", "idle",
			"instance", fmt.Sprintf("host-%d:9100", i/64), "job", "node")}
		samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: 1000, V: float64(i)}
	}
	m.StoreSeries(series, 0)
	ctx := context.Background()
	round := func() {
		at := record.Span{End: record.Position{Offset: 1}}
		if got := m.AppendSamples(samples, at); got != n {
			t.Fatalf("took %d of %d", got, n)
		}
		f := sh.prepare(1, nil)
		sh.deliver(ctx, f, nil)
		sh.done(f.batch)
	}
	round()
	round()
	allocs := testing.AllocsPerRun(20, round)
	require.Zero(t, allocs, "allocations per record of %d samples", n)
	_, pending := m.LowestPending()
	require.False(t, pending)
}
