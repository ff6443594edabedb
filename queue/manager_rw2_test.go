package queue_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
)

// TestManagerRW2CarriedTablesAcrossReshards: an RW2 queue of label-light
// series, whose shards carry their symbol tables from request to request
// and cache every series' refs, reshards under a slow endpoint, gets
// metadata for its series while they are queued, forgets them (their
// interned ids freed and reused) and takes new series, some with the
// strings of the forgotten ones. Every request passes the spec's symbol
// checks and every sample arrives once, in order, with its series' labels
// and the metadata it was queued with. Run with -race: the shard writing a
// series' cached refs races with nothing.
func TestManagerRW2CarriedTablesAcrossReshards(t *testing.T) {
	r := testkit.NewReceiver(t)
	r.Respond(func(*testkit.Request) testkit.Reply { return testkit.Reply{Delay: 20 * time.Millisecond} })
	qc := testQueueConfig()
	qc.MinShards, qc.MaxShards = 1, 4
	reg := prometheus.NewRegistry()
	m, _ := runManagerEvery(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Protocol: queue.RW2,
		Sender: newClient(t, r.URL), Metrics: queue.NewMetrics(reg)}, 50*time.Millisecond)
	shards := func() float64 { return testkit.Metric(t, reg, "prometheus_remote_storage_shards") }

	const nSeries = 100
	type set struct {
		first  record.Ref
		series []record.RefSeries
	}
	newSet := func(first record.Ref, name string, segment int) set {
		s := set{first: first, series: make([]record.RefSeries, nSeries)}
		for i := range s.series {
			s.series[i] = record.RefSeries{Ref: first + record.Ref(i), Labels: labels.FromStrings("__name__", name, "i", fmt.Sprint(i%10), "j", fmt.Sprint(i/10))}
		}
		m.StoreSeries(s.series, segment)
		return s
	}
	scrape := func(s set, sc int) {
		samples := make([]record.RefSample, nSeries)
		for i := range samples {
			samples[i] = record.RefSample{Ref: s.first + record.Ref(i), T: int64(sc) * 1000, V: float64(sc)}
		}
		appendAll(m, samples, scrapeSpan(sc))
	}
	want := map[string]int{} // scrapes sent per series
	wantScrapes := func(s set, n int) {
		for _, se := range s.series {
			want[se.Labels.String()] += n
		}
	}

	// Set a: metadata arrives at scrape 5; scrapes go on until the queue
	// runs more than one shard.
	a := newSet(1, "up", 0)
	sc := 0
	for ; sc < 10 || shards() < 2; sc++ {
		if sc == 5 {
			meta := make([]record.RefMetadata, nSeries)
			for i := range meta {
				meta[i] = record.RefMetadata{Ref: a.first + record.Ref(i), Type: record.Counter, Help: "Whether it is up."}
			}
			m.StoreMetadata(meta)
		}
		scrape(a, sc)
		require.Less(t, sc, 10_000, "never resharded up")
	}
	wantScrapes(a, sc)

	// Set b replaces a (a forgotten, its ids freed once its encodings are
	// unreachable), then come set c (new strings) and set d (a's very
	// labels, interned anew).
	b := newSet(1001, "down", 1)
	for range 5 {
		scrape(b, sc)
		sc++
	}
	wantScrapes(b, 5)
	m.SeriesReset(1)
	testkit.Eventually(t, func() bool { return r.Accepted().Samples == nSeries*sc }, "a and b arrive")
	runtime.GC()
	m.SeriesReset(1) // sweeps what the collector found unreachable
	c := newSet(2001, "up_again", 2)
	d := newSet(3001, "up", 2)
	for range 10 {
		scrape(c, sc)
		scrape(d, sc)
		sc++
	}
	wantScrapes(c, 10)
	wantScrapes(d, 10)

	total := 0
	for _, n := range want {
		total += n
	}
	testkit.Eventually(t, func() bool { return r.Accepted().Samples == total }, "everything arrives")

	bodies, accepted := bodiesOf(r)
	samples, types := r.Samples(), r.Types()
	require.Equal(t, len(bodies), len(accepted), "every request accepted, none twice")
	require.Len(t, samples, 3*nSeries, "a and d share their labels")
	for key, ss := range samples {
		require.Len(t, ss, want[key], key)
		for i := 1; i < len(ss); i++ {
			require.Less(t, ss[i-1].Timestamp, ss[i].Timestamp, "%s: out of order or duplicated", key)
		}
	}
	for _, se := range a.series {
		key := se.Labels.String()
		for i, typ := range types[key][:want[key]-10] { // a's own scrapes, before d's
			wantType := writev2.Metadata_METRIC_TYPE_UNSPECIFIED
			if samples[key][i].Timestamp >= 5000 {
				wantType = writev2.Metadata_METRIC_TYPE_COUNTER
			}
			require.Equal(t, wantType, typ, "%s at %d", key, samples[key][i].Timestamp)
		}
	}
}
