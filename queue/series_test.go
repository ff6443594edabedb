package queue

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal/record"
)

func TestSeriesCache(t *testing.T) {
	drop := &relabel.Config{
		SourceLabels:         model.LabelNames{"__name__"},
		Regex:                relabel.MustNewRegexp("debug_.*"),
		Action:               relabel.Drop,
		NameValidationScheme: model.UTF8Validation,
	}
	tab := newTestTable()
	c := newSeriesCache(labels.FromStrings("cluster", "eu", "job", "ignored"), []*relabel.Config{drop}, tab, true)

	c.store([]record.RefSeries{
		{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node")},
		{Ref: 2, Labels: labels.FromStrings("__name__", "debug_x", "job", "node")},
		{Ref: 1 << 40, Labels: labels.FromStrings("__name__", "far")},
	}, 3)

	s := c.get(1)
	require.NotNil(t, s)
	require.Equal(t, seriesKept, s.state)
	// External labels are added where missing; the series' own job wins.
	want := labels.FromStrings("__name__", "up", "cluster", "eu", "job", "node")
	b := rw1Builder{tab: tab, dir: tab.snapshot()}
	require.Equal(t, want, rw1Labels(t, b.labels(s.data)))
	require.Equal(t, appendRW1Labels(nil, want), b.labels(s.data))
	require.Len(t, setIDs(tab, s.data.set), 6, "three labels, each a name and a value")
	require.Equal(t, seriesDropped, c.get(2).state)
	require.NotNil(t, c.get(1<<40), "a far ref goes to the map")
	require.Len(t, c.series.pages, 1, "and does not grow the pages")
	require.Nil(t, c.get(7))
	require.Equal(t, 2, c.kept)
	require.Equal(t, 1, c.dropped)

	// Stored again from a checkpoint with the same labels: only the segment
	// moves, the encoding is the same slice.
	data := c.get(1).data
	c.store([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node")}}, 5)
	require.EqualValues(t, 5, c.get(1).segment)
	require.Same(t, data, c.get(1).data)

	// A reused ref with new labels is re-encoded.
	c.store([]record.RefSeries{{Ref: 2, Labels: labels.FromStrings("__name__", "requests")}}, 5)
	require.Equal(t, seriesKept, c.get(2).state)
	require.Equal(t, 3, c.kept)
	require.Equal(t, 0, c.dropped)

	// Series last stored from segments below 5 go.
	c.reset(5)
	require.NotNil(t, c.get(1))
	require.NotNil(t, c.get(2))
	require.Nil(t, c.get(1<<40))
	require.Equal(t, 2, c.kept)
}

// TestEncodedSeriesSize: what every kept series costs besides its slot,
// its encoding with a label set of up to 23 bytes, stays in the 48-byte
// size class.
func TestEncodedSeriesSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(encodedSeries{}), uintptr(48))
}

func TestSeriesCacheLookupAllocatesNothing(t *testing.T) {
	c := newSeriesCache(labels.EmptyLabels(), nil, newTestTable(), false)
	in := make([]record.RefSeries, 10000)
	for i := range in {
		in[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("i", string(rune('a'+i%26)))}
	}
	c.store(in, 0)
	allocs := testing.AllocsPerRun(100, func() {
		for i := 1; i <= 10000; i++ {
			if c.get(record.Ref(i)) == nil {
				t.Fatal("missing")
			}
		}
	})
	require.Zero(t, allocs)
}

func TestAckTracker(t *testing.T) {
	var a ackTracker
	_, ok := a.lowest()
	require.False(t, ok)

	p := func(seg int, off int64) record.Position { return record.Position{Segment: seg, Offset: off} }
	r1 := a.begin(p(0, 0), 3, kindSample)
	r2 := a.begin(p(0, 100), 2, kindFloatHistogram)
	r3 := a.begin(p(1, 0), 1, kindExemplar)
	low, ok := a.lowest()
	require.True(t, ok)
	require.Equal(t, p(0, 0), low)
	require.Equal(t, 6, a.pendingItems())
	require.Equal(t, [numClasses]int{3, 2, 1}, a.pendingByClass(), "samples, histograms, exemplars")

	// Later records finishing first do not move the lowest position.
	a.done(r2, 2)
	a.done(r3, 1)
	low, _ = a.lowest()
	require.Equal(t, p(0, 0), low)
	a.done(r1, 2)
	low, _ = a.lowest()
	require.Equal(t, p(0, 0), low)
	a.done(r1, 1)
	_, ok = a.lowest()
	require.False(t, ok, "everything finished")
	require.Zero(t, a.pendingItems())

	// Sequence numbers stay valid after the front is dropped.
	for i := 0; i < 1000; i++ {
		seq := a.begin(p(2, int64(i)), 1, kindSample)
		a.done(seq, 1)
	}
	seq := a.begin(p(3, 0), 1, kindSample)
	low, _ = a.lowest()
	require.Equal(t, p(3, 0), low)
	a.done(seq, 1)
	_, ok = a.lowest()
	require.False(t, ok)
	require.Less(t, len(a.pending), 10, "finished records are dropped")
}

// churnLabels returns the labels of series i of a churn round: every
// round brings k new pods (new values), the names and a few values stay.
func churnLabels(round, i int) labels.Labels {
	return labels.FromStrings("__name__", fmt.Sprintf("metric_%d", i%10), "job", "kubelet",
		"namespace", fmt.Sprintf("team-%d", i%5), "pod", fmt.Sprintf("pod-%d-%d", round, i/10), "uid", fmt.Sprintf("%d-%d", round, i))
}

// TestSeriesCacheChurnBoundsInterner: a cache through many rounds of k
// series in, k series out keeps a bounded number of interned labels and
// strings, an encoding still referred to (as a queued item refers to it)
// keeps its labels until it is dropped, and once everything is forgotten
// and unreachable only the empty string is left.
func TestSeriesCacheChurnBoundsInterner(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	c := newSeriesCache(labels.FromStrings("cluster", "eu"), nil, tab, true)
	const k, rounds = 1000, 60
	var (
		held      *encodedSeries // as a queued item would
		heldWant  labels.Labels
		heldUntil int
		maxLen    int
	)
	for round := range rounds {
		series := make([]record.RefSeries, k)
		meta := make([]record.RefMetadata, 0, k/10)
		for i := range series {
			ref := record.Ref(round*k + i + 1) // refs are not reused
			series[i] = record.RefSeries{Ref: ref, Labels: churnLabels(round, i)}
			if i%10 == 0 {
				meta = append(meta, record.RefMetadata{Ref: ref, Type: record.Counter, Help: fmt.Sprintf("help %d", round), Unit: "seconds"})
			}
		}
		c.store(series, round)
		c.setMetadata(meta)
		if round%10 == 3 {
			held, heldUntil = c.get(record.Ref(round*k+1)).data, round+5
			b := labels.NewBuilder(churnLabels(round, 0))
			heldWant = b.Set("cluster", "eu").Labels()
		}
		if held != nil {
			checkEncoding(t, tab, held, heldWant)
			if round == heldUntil {
				held = nil
			}
		}
		runtime.GC() // what was forgotten at the last reset and is unreachable
		c.reset(round)
		require.Equal(t, k, c.kept)
		maxLen = max(maxLen, in.Len())
		if round >= 10 {
			// One round's strings, the previous round's (forgotten now,
			// released at the next reset), a held series', and those
			// that stay: about 2 × (k uids + k/10 pods + 1 help).
			require.Less(t, in.Live(), 3*k, "round %d", round)
			require.Equal(t, maxLen, in.Len(), "round %d: ids are reused, not added", round)
		}
	}
	require.Less(t, maxLen, 4*k)
	c.reset(rounds) // forgets everything
	runtime.GC()
	c.reset(rounds) // releases it
	require.Equal(t, 1, in.Live(), "only the empty string is left")
	require.Zero(t, tab.live(), "and no label")
	require.Empty(t, c.retired)
}

// checkEncoding checks that the labels of d still are want.
func checkEncoding(t *testing.T, tab *labelTable, d *encodedSeries, want labels.Labels) {
	t.Helper()
	testkit.RequireLabels(t, want, rw1Labels(t, appendRW1Set(nil, tab.snapshot(), tab.strings, d.set)))
	b := labels.NewScratchBuilder(0)
	dir := tab.snapshot()
	for name, value := range d.set.reader().labels(dir) {
		b.Add(tab.strings.String(name), tab.strings.String(value))
	}
	testkit.RequireLabels(t, want, b.Labels())
}

// TestSeriesCacheChurnConcurrentEncoders: encoders read the strings of the
// encodings handed to them (as shards read queued items) while the
// feeding goroutine churns series, freeing and reusing ids; every request
// decodes to the labels of its series. Run with -race.
func TestSeriesCacheChurnConcurrentEncoders(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	c := newSeriesCache(labels.EmptyLabels(), nil, tab, true)
	type queued struct {
		d    *encodedSeries
		want labels.Labels
	}
	items := make(chan []queued, 4)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			enc := newRW2Encoder(tab)
			sb := labels.NewScratchBuilder(0)
			for batch := range items {
				enc.Reset()
				for _, q := range batch {
					enc.AddSampleWithExemplars(q.d, 1, 1, 0, []rw2Exemplar{{Labels: labels.FromStrings("pod", q.want.Get("pod")), T: 1, V: 1}})
				}
				var dec writev2.Request
				if err := dec.Unmarshal(enc.Bytes()); err != nil {
					t.Error(err)
					return
				}
				for i, ts := range dec.Timeseries {
					if got, err := ts.ToLabels(&sb, dec.Symbols); err != nil || !labels.Equal(got, batch[i].want) {
						t.Errorf("decoded %s, want %s", got, batch[i].want)
					}
					if x, err := ts.Exemplars[0].ToExemplar(&sb, dec.Symbols); err != nil || x.Labels.Get("pod") != batch[i].want.Get("pod") {
						t.Errorf("exemplar %v (%v), want pod %q", x.Labels, err, batch[i].want.Get("pod"))
					}
				}
			}
		})
	}
	const k = 200
	for round := range 100 {
		series := make([]record.RefSeries, k)
		for i := range series {
			series[i] = record.RefSeries{Ref: record.Ref(round*k + i + 1), Labels: churnLabels(round, i)}
		}
		c.store(series, round)
		batch := make([]queued, 0, k)
		for i := range series {
			batch = append(batch, queued{c.get(series[i].Ref).data, series[i].Labels})
		}
		items <- batch
		if round%5 == 0 {
			runtime.GC()
		}
		c.reset(round)
	}
	close(items)
	wg.Wait()
	require.Less(t, in.Len(), 100*k, "ids were reused")
	require.Less(t, len(tab.refs), 100*k, "label ids were reused")
}

// rw1Labels decodes a series' RW1 label bytes (TimeSeries.labels entries).
func rw1Labels(t testing.TB, rw1 []byte) labels.Labels {
	var ts prompb.TimeSeries
	if err := ts.Unmarshal(rw1); err != nil {
		t.Fatal(err)
	}
	b := labels.NewScratchBuilder(0)
	for _, l := range ts.Labels {
		b.Add(l.Name, l.Value)
	}
	return b.Labels()
}

// TestSeriesCacheMetricName: RW1 metadata finds a series' metric name in
// its label set, wherever the name sorts.
func TestSeriesCacheMetricName(t *testing.T) {
	for _, rw2 := range []bool{false, true} {
		c := newSeriesCache(labels.EmptyLabels(), nil, newTestTable(), rw2)
		c.store([]record.RefSeries{
			{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node")},
			{Ref: 2, Labels: labels.FromStrings("A", "first", "__name__", "after_A", "z", strings.Repeat("v", 200))},
			{Ref: 3, Labels: labels.FromStrings("job", "nameless")},
		}, 0)
		require.Equal(t, "up", c.metricName(c.get(1).data))
		require.Equal(t, "after_A", c.metricName(c.get(2).data))
		require.Empty(t, c.metricName(c.get(3).data))
	}
}

// TestSeriesCacheSharesPlainEncodings: the queues one watcher feeds share
// the encoding of a series none of their relabelling changes; one that a
// queue relabels or drops is its own. Metadata moves the shared series
// to first's new encoding. Shared encodings are retired by the queue
// that made them only, and only then released: after both caches forgot
// them, every label is released once. Encoders of both queues read the
// shared encodings at once, each caching RW2 refs only in its own (run
// with -race).
func TestSeriesCacheSharesPlainEncodings(t *testing.T) {
	tab := newTestTable()
	ext := labels.FromStrings("cluster", "eu")
	first := newSeriesCache(ext, nil, tab, true)
	rules := []*relabel.Config{{
		SourceLabels: model.LabelNames{"__name__"}, Regex: relabel.MustNewRegexp("debug_.*"),
		Action: relabel.Drop, NameValidationScheme: model.UTF8Validation,
	}, {
		SourceLabels: model.LabelNames{"job"}, Regex: relabel.MustNewRegexp("special"),
		TargetLabel: "tier", Replacement: "gold", Action: relabel.Replace, NameValidationScheme: model.UTF8Validation,
	}}
	other := newSeriesCache(ext, rules, tab, true)
	other.lane = 1
	series := []record.RefSeries{
		{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node")},
		{Ref: 2, Labels: labels.FromStrings("__name__", "debug_x", "job", "node")},
		{Ref: 3, Labels: labels.FromStrings("__name__", "up", "job", "special")},
		{Ref: 4, Labels: labels.FromStrings("__name__", "up", "cluster", "us", "job", "node")},
	}
	first.store(series, 0)
	other.storeAfter(series, 0, first)

	require.Same(t, first.get(1).data, other.get(1).data, "unchanged by either: shared")
	require.Same(t, first.get(4).data, other.get(4).data, "its own cluster wins in both: shared")
	require.Equal(t, seriesDropped, other.get(2).state)
	require.NotSame(t, first.get(3).data, other.get(3).data, "relabelled: its own")
	require.Equal(t, uint8(1), other.get(3).data.lane)
	b := rw1Builder{tab: tab, dir: tab.snapshot()}
	require.Equal(t, labels.FromStrings("__name__", "up", "cluster", "eu", "job", "special", "tier", "gold"), rw1Labels(t, b.labels(other.get(3).data)))
	require.Equal(t, labels.FromStrings("__name__", "up", "cluster", "eu", "job", "node"), rw1Labels(t, b.labels(other.get(1).data)))

	// Encoders of both queues, each with a carried table, send the shared
	// series at once.
	var wg sync.WaitGroup
	for _, lane := range []uint8{0, 1} {
		wg.Go(func() {
			e := newRW2Encoder(tab)
			e.lane = lane
			for range 20 {
				e.Reset()
				for i := range 50 {
					e.AddSample(first.get(1).data, int64(i), 1, 0)
				}
				var dec writev2.Request
				if err := dec.Unmarshal(e.Bytes()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()

	meta := []record.RefMetadata{{Ref: 1, Type: record.Gauge, Help: "Up."}, {Ref: 3, Type: record.Gauge, Help: "Up."}}
	first.setMetadata(meta)
	other.setMetadataAfter(meta, first)
	require.Same(t, first.get(1).data, other.get(1).data, "takes first's encoding with metadata")
	typ, help, _, _ := other.get(3).data.set.metadata()
	require.Equal(t, uint8(writev2.Metadata_METRIC_TYPE_GAUGE), typ)
	require.Equal(t, "Up.", tab.strings.String(help))

	// Both forget everything; once nothing refers to the encodings, every
	// label is released exactly once (release panics on a second).
	first.reset(1)
	other.resetAfter(1, first)
	require.Zero(t, other.kept)
	require.Len(t, other.retired, 2, "its own encodings of ref 3 (before and with metadata); the shared ones are first's to retire")
	for range 3 {
		runtime.GC()
	}
	first.sweep()
	other.sweep()
	require.Empty(t, first.retired)
	require.Empty(t, other.retired)
	require.Equal(t, 1, tab.strings.Live(), "every string released but the empty one")
	require.Empty(t, tab.labels, "every label released")
	require.Empty(t, tab.runs, "every run released")
}

// TestSeriesCacheSharesWithoutExternalLabels: without external labels,
// a series is plain when relabelling gave back the WAL's labels.
func TestSeriesCacheSharesWithoutExternalLabels(t *testing.T) {
	first, other := twoLanes(t, &relabel.Config{
		SourceLabels: model.LabelNames{"job"}, Regex: relabel.MustNewRegexp("special"),
		TargetLabel: "tier", Replacement: "gold", Action: relabel.Replace, NameValidationScheme: model.UTF8Validation,
	}, labels.FromStrings("__name__", "up", "job", "special"))
	require.Same(t, first.get(1).data, other.get(1).data)
	require.NotSame(t, first.get(2).data, other.get(2).data)
}

// TestSeriesCacheDiscard: a discarded cache (its queue is done: a reload,
// a lane that left) costs nothing until another cache of the table
// sweeps; then the encodings it made are released once nothing refers to
// them, those a lane still shares only after that lane forgot them too.
func TestSeriesCacheDiscard(t *testing.T) {
	first, other := twoLanes(t, &relabel.Config{
		SourceLabels: model.LabelNames{"__name__"}, Regex: relabel.MustNewRegexp("debug_.*"),
		Action: relabel.Drop, NameValidationScheme: model.UTF8Validation,
	}, labels.FromStrings("__name__", "debug_only_first", "job", "node"))
	tab := first.table
	other.unmirror() // as its next call without first does: first is done
	first.discard()
	require.NotNil(t, first.get(2), "nothing happens before a sweep")

	other.sweep() // retires what first made
	runtime.GC()
	other.sweep() // releases what nothing refers to
	_, held := tab.strings.Lookup("debug_only_first")
	require.False(t, held, "only first held it: released")
	_, held = tab.strings.Lookup("up")
	require.True(t, held, "other still shares it")
	require.Len(t, tab.orphans, 1)

	other.reset(1)
	for range 3 {
		runtime.GC()
	}
	other.sweep()
	require.Empty(t, tab.orphans)
	require.Equal(t, 1, tab.strings.Live(), "every string released but the empty one")
	require.Empty(t, tab.labels)
	require.Empty(t, tab.runs)
}

// TestLabelsSweep: Labels.Sweep does for a discarded cache what another
// cache's sweep does at its next series reset, at once (the Storage calls
// it after a reload or a regroup stopped queues): its series are let go,
// and the labels only it held are released at the next Sweep after the
// collector ran.
func TestLabelsSweep(t *testing.T) {
	tab := newTestTable()
	c := newSeriesCache(labels.EmptyLabels(), nil, tab, false)
	c.store([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node")}}, 0)
	c.discard()
	l := &Labels{t: tab}
	l.Sweep()
	require.Nil(t, c.get(1), "let go")
	runtime.GC()
	l.Sweep()
	require.Empty(t, tab.orphans)
	require.Equal(t, 1, tab.strings.Live(), "every string released but the empty one")
}

// twoLanes returns the caches of two lanes of one table without external
// labels, the other with rule, both given series 1 (up{job="node"}) and
// series 2 (second), first's first.
func twoLanes(t *testing.T, rule *relabel.Config, second labels.Labels) (first, other *seriesCache) {
	t.Helper()
	tab := newTestTable()
	first = newSeriesCache(labels.EmptyLabels(), nil, tab, false)
	other = newSeriesCache(labels.EmptyLabels(), []*relabel.Config{rule}, tab, false)
	other.lane = 1
	series := []record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node")}, {Ref: 2, Labels: second}}
	first.store(series, 0)
	other.storeAfter(series, 0, first)
	return first, other
}
