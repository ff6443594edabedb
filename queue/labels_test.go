package queue

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal/record"
)

// newTestTable returns a label table with strings of its own.
func newTestTable() *labelTable { return newLabelTable(&interner{}) }

// testContexts are the tests' add contexts, one per table as a queue has.
var testContexts sync.Map // *labelTable → *addContext

// add is tab.add with the table's test context.
func add(tab *labelTable, ls labels.Labels) labelSet {
	ctx, _ := testContexts.LoadOrStore(tab, &addContext{})
	return labelSet(tab.add(ls, ctx.(*addContext)))
}

// internSeries interns ls in tab as a queue's series, without metadata.
func internSeries(tab *labelTable, ls labels.Labels) *encodedSeries {
	return newEncodedSeries([]byte(add(tab, ls)), 0)
}

// withMeta returns d with RW2 metadata instead of its own, for d's
// holder: typ is a model.MetricType string.
func withMeta(tab *labelTable, d *encodedSeries, typ, help, unit string) *encodedSeries {
	t := uint8(writev2.FromMetadataType(model.MetricType(typ)))
	m := newEncodedSeries(tab.withMetadata(d.set, t, help, unit), 0)
	tab.release(d.set)
	return m
}

// setIDs returns the name and value string ids of the labels of s.
func setIDs(tab *labelTable, s labelSet) []uint32 {
	var ids []uint32
	for name, value := range s.reader().labels(tab.snapshot()) {
		ids = append(ids, name, value)
	}
	return ids
}

// A set's RW1 entries are the labels' gogo encoding, whatever the labels
// share with the series added before them, and the metadata round-trips.
func TestLabelTable(t *testing.T) {
	tab := newTestTable()
	var sets []labelSet
	var want []labels.Labels
	for i := range 3000 {
		ls := labels.FromStrings("__name__", fmt.Sprint("m", i%7), "instance", fmt.Sprint("host-", i/100), "pod", fmt.Sprint("p", i), "z", "")
		sets = append(sets, add(tab, ls))
		want = append(want, ls)
	}
	dir := tab.snapshot()
	for i, s := range sets {
		w, err := (&prompb.TimeSeries{Labels: prompb.FromLabels(want[i], nil)}).Marshal()
		require.NoError(t, err)
		require.Equal(t, w, appendRW1Set(nil, dir, tab.strings, s))
		require.Equal(t, len(w), s.rw1Size())
		var names []string
		for name, value := range s.reader().labels(dir) {
			names = append(names, tab.strings.String(name)+"="+tab.strings.String(value))
		}
		require.Equal(t, []string{"__name__=m" + fmt.Sprint(i%7), "instance=host-" + fmt.Sprint(i/100), "pod=p" + fmt.Sprint(i), "z="}, names)
		_, _, _, ok := s.metadata()
		require.False(t, ok)
	}
	// Labels whose value other series have too are interned as labels (7
	// metric names, 30 instances and z=""; a value's first series keeps
	// it raw); pods, each one series' own, stay raw string ids.
	require.Equal(t, 7+30+1, tab.live())
	require.Equal(t, 1+4+7+30+3000, tab.strings.Live(), "the empty string (z's value), 4 names, 7+30+3000 values")

	m := labelSet(tab.withMetadata(sets[5], 2, "help text", "seconds"))
	typ, help, unit, ok := m.metadata()
	require.True(t, ok)
	require.Equal(t, uint8(2), typ)
	require.Equal(t, "help text", tab.strings.String(help))
	require.Equal(t, "seconds", tab.strings.String(unit))
	require.Equal(t, appendRW1Set(nil, dir, tab.strings, sets[5]), appendRW1Set(nil, dir, tab.strings, m))

	// Releasing every set frees every label and string.
	for _, s := range sets {
		tab.release(s)
	}
	require.Equal(t, 2, tab.live(), "the metadata copy still holds its labels (instance, z; its metric name is the first series' m5: raw)")
	tab.release(m)
	require.Equal(t, 0, tab.live())
	require.Equal(t, 1, tab.strings.Live())
	require.Panics(t, func() { tab.release(m) })

	// Freed ids are reused (the second series shares a="b" with the
	// first: a label).
	n := len(tab.refs)
	add(tab, labels.FromStrings("a", "b"))
	add(tab, labels.FromStrings("a", "b", "c", "d"))
	require.Equal(t, 1, tab.live())
	require.Equal(t, n, len(tab.refs))
}

// Labels a series shares with the series stored before it form runs: a
// set names fewer ids than labels, its RW1 entries and label ids are still
// the labels', runs are shared by the series that share them, and
// releasing everything frees labels and runs alike.
func TestLabelTableRuns(t *testing.T) {
	tab := newTestTable()
	lsOf := func(i int) labels.Labels {
		return labels.FromStrings("__name__", fmt.Sprint("metric_", i%25), "container", "app", "instance", fmt.Sprint("10.0.0.", i/50),
			"job", "kubelet", "namespace", "team", "pod", fmt.Sprint("pod-", i/50), "uid", fmt.Sprint(i))
	}
	var sets []labelSet
	for i := range 500 {
		sets = append(sets, add(tab, lsOf(i)))
	}
	dir := tab.snapshot()
	elements := func(s labelSet) int {
		n := 0
		for k := s.reader().from; k < len(s); n++ {
			_, _, _, k = element(s, k)
		}
		return n
	}
	for i, s := range sets {
		ls := lsOf(i)
		w, err := (&prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)}).Marshal()
		require.NoError(t, err)
		require.Equal(t, w, appendRW1Set(nil, dir, tab.strings, s), "series %d", i)
		require.Equal(t, len(w), s.rw1Size())
		got := labels.NewScratchBuilder(0)
		for name, value := range s.reader().labels(dir) {
			got.Add(tab.strings.String(name), tab.strings.String(value))
		}
		require.Equal(t, ls, got.Labels())
		require.Equal(t, ls.Len(), s.reader().n)
		if i%50 != 0 {
			// container..pod come with the previous series: one run.
			require.Equal(t, 3, elements(s), "series %d: name, run, uid", i)
		}
	}
	// Labels: 25 metric names, container, 10 instances, job, namespace,
	// 10 pods (uids, each one series' own, stay raw); runs: one per pod,
	// and job..namespace, which the first series of a pod shares with the
	// last of the pod before.
	require.Equal(t, 48+10+1, tab.live())

	// The RW2 encoder expands runs into their labels.
	e := newRW2Encoder(tab)
	for _, s := range sets {
		e.AddSample(&encodedSeries{set: s}, 1, 1, 0)
	}
	var req writev2.Request
	require.NoError(t, req.Unmarshal(e.Bytes()))
	sb := labels.NewScratchBuilder(0)
	for i, ts := range req.Timeseries {
		got, err := ts.ToLabels(&sb, req.Symbols)
		require.NoError(t, err)
		testkit.RequireLabels(t, lsOf(i), got)
	}

	for _, s := range sets {
		tab.release(s)
	}
	require.Zero(t, tab.live())
	require.Equal(t, 1, tab.strings.Live())
}

// Queues of one WAL share a label table (Options.Labels): each stores the
// same series from its own goroutine, every encoding is right, the labels
// are interned once, and each queue's runs come from its own last series
// (not from another queue's copy of the same series, which would make a
// run of every label of every series).
func TestSharedLabelTable(t *testing.T) {
	shared := NewLabels()
	lsOf := func(i int) labels.Labels {
		return labels.FromStrings("__name__", fmt.Sprint("metric_", i%25), "instance", fmt.Sprint("10.0.0.", i/50), "job", "kubelet",
			"namespace", "team", "pod", fmt.Sprint("pod-", i/50), "uid", fmt.Sprint(i))
	}
	const n = 2000
	caches := make([]*seriesCache, 3)
	var wg sync.WaitGroup
	for q := range caches {
		caches[q] = newSeriesCache(labels.EmptyLabels(), nil, shared.t, q == 0)
		wg.Go(func() {
			for i := range n {
				caches[q].store([]record.RefSeries{{Ref: record.Ref(i + 1), Labels: lsOf(i)}}, 0)
			}
		})
	}
	wg.Wait()
	dir := shared.t.snapshot()
	for _, c := range caches {
		for i := range n {
			w, err := (&prompb.TimeSeries{Labels: prompb.FromLabels(lsOf(i), nil)}).Marshal()
			require.NoError(t, err)
			require.Equal(t, w, appendRW1Set(nil, dir, shared.t.strings, c.get(record.Ref(i+1)).data.set))
		}
	}
	labelsOnce := 25 + 40 + 1 + 1 + 40 + n
	require.Less(t, shared.t.live(), labelsOnce+200, "labels once, and a few runs")
}
