package queue

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// rw2Decoded unmarshals an RW2 body as upstream's receiver does and checks
// what the spec asks of its symbol table: "" first, no string twice.
func rw2Decoded(t *testing.T, body []byte) writev2.Request {
	t.Helper()
	var req writev2.Request
	require.NoError(t, req.Unmarshal(body))
	require.NotEmpty(t, req.Symbols)
	require.Equal(t, "", req.Symbols[0])
	seen := make(map[string]bool, len(req.Symbols))
	for _, s := range req.Symbols {
		require.False(t, seen[s], "symbol %q twice", s)
		seen[s] = true
	}
	return req
}

// rw2LabelsOf returns the labels of every series entry of req.
func rw2LabelsOf(t *testing.T, req writev2.Request) []labels.Labels {
	t.Helper()
	sb := labels.NewScratchBuilder(0)
	out := make([]labels.Labels, len(req.Timeseries))
	for i, ts := range req.Timeseries {
		ls, err := ts.ToLabels(&sb, req.Symbols)
		require.NoError(t, err)
		out[i] = ls
	}
	return out
}

// TestRW2CarriedTable: a small table is carried to the next request, series
// copy their cached refs under it, and a table grown large beside its
// request is not carried.
func TestRW2CarriedTable(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	e := newRW2Encoder(tab)
	a := internSeries(tab, labels.FromStrings("__name__", "up", "job", "a"))
	b := internSeries(tab, labels.FromStrings("__name__", "up", "job", "b"))
	b = withMeta(tab, b, "gauge", "Whether the target is up.", "")

	request := func(series ...*encodedSeries) writev2.Request {
		for i := range 50 {
			for _, s := range series {
				e.AddSample(s, int64(i), float64(i), 0)
			}
		}
		return rw2Decoded(t, e.Bytes())
	}
	first := request(a, b)
	require.False(t, e.Carried(), "the first request starts empty")

	e.Reset()
	require.True(t, e.Carried(), "5 strings beside 100 entries")
	second := request(a, b)
	require.Equal(t, first.Symbols, second.Symbols, "nothing new to add")
	require.Equal(t, rw2LabelsOf(t, first), rw2LabelsOf(t, second))
	require.Equal(t, first.Timeseries[1].Metadata, second.Timeseries[1].Metadata)
	require.NotNil(t, a.refs.fields, "a series that came back under the table keeps its refs")
	c := internSeries(tab, labels.FromStrings("__name__", "up", "job", "b"))
	e.AddSample(c, 99, 1, 0)
	require.Nil(t, c.refs.fields, "a series seen once under the table is only marked")

	// A request of many new strings and one sample each: its table is
	// not carried to the next.
	e.Reset()
	wide := make([]*encodedSeries, 20)
	for i := range wide {
		wide[i] = internSeries(tab, labels.FromStrings("__name__", fmt.Sprintf("a_rather_long_metric_name_%d", i), "pod", fmt.Sprintf("pod-%d-with-a-long-suffix", i)))
		e.AddSample(wide[i], 1, 1, 0)
	}
	got := rw2LabelsOf(t, rw2Decoded(t, e.Bytes()))
	for i := range wide {
		require.Equal(t, "pod-"+fmt.Sprint(i)+"-with-a-long-suffix", got[i].Get("pod"))
	}
	e.Reset()
	require.False(t, e.Carried())
	third := request(a, b)
	require.Equal(t, rw2LabelsOf(t, first), rw2LabelsOf(t, third))
	require.Len(t, third.Symbols, len(first.Symbols), "the new table holds only what it uses")
}

// TestRW2CarriedLongRefs: a series whose labels_refs and entry need
// lengths of more than one byte is copied right from its cache.
func TestRW2CarriedLongRefs(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	e := newRW2Encoder(tab)
	sb := labels.NewScratchBuilder(0)
	for i := range 100 { // 200 refs, most above 127: far more than 127 bytes
		sb.Add(fmt.Sprintf("label_%03d", i), fmt.Sprintf("value_%03d", i))
	}
	sb.Sort()
	ls := sb.Labels()
	s := internSeries(tab, ls)
	s = withMeta(tab, s, "gauge", "A series of many labels.", "bytes")
	for round := range 3 {
		e.Reset()
		require.Equal(t, round > 0, e.Carried())
		for i := range 50 {
			e.AddSample(s, int64(i), float64(i), 0)
		}
		req := rw2Decoded(t, e.Bytes())
		for _, got := range rw2LabelsOf(t, req) {
			require.Equal(t, ls, got)
		}
		md := req.Timeseries[49].Metadata
		require.Equal(t, writev2.Metadata_METRIC_TYPE_GAUGE, md.Type)
		require.Equal(t, "A series of many labels.", req.Symbols[md.HelpRef])
		require.Equal(t, []writev2.Sample{{Value: 49, Timestamp: 49}}, req.Timeseries[49].Samples)
	}
}

// TestRW2CarriedTableAfterFreedIds: interned ids a carried table mapped are
// freed and given to other strings, and freed strings come back under new
// ids. Every request still decodes to the series' own labels, with no
// symbol twice.
func TestRW2CarriedTableAfterFreedIds(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	e := newRW2Encoder(tab)
	request := func(series ...*encodedSeries) []labels.Labels {
		e.Reset()
		for i := range 50 {
			for _, s := range series {
				e.AddSampleWithExemplars(s, int64(i), 1, 0, []rw2Exemplar{{Labels: labels.FromStrings("trace_id", "a"), T: int64(i), V: 1}})
			}
		}
		req := rw2Decoded(t, e.Bytes())
		sb := labels.NewScratchBuilder(0)
		for _, ts := range req.Timeseries {
			x, err := ts.Exemplars[0].ToExemplar(&sb, req.Symbols)
			require.NoError(t, err)
			require.Equal(t, labels.FromStrings("trace_id", "a"), x.Labels)
		}
		return rw2LabelsOf(t, req)[:len(series)]
	}
	lsA := labels.FromStrings("__name__", "up", "job", "a")
	a := internSeries(tab, lsA)
	request(a)
	require.Equal(t, []labels.Labels{lsA}, request(a))
	require.True(t, e.Carried())

	// Every id of a is freed; b's strings take the same ids (the interner
	// reuses freed ids first), so the table's slots for them are stale.
	tab.release(a.set)
	lsB := labels.FromStrings("__name__", "down", "job", "b")
	b := internSeries(tab, lsB)
	require.ElementsMatch(t, setIDs(tab, a.set), setIDs(tab, b.set), "b reuses a's ids")
	require.Equal(t, []labels.Labels{lsB}, request(b))
	require.True(t, e.Carried())

	// a's strings come back under new ids: the table already holds them
	// (one of them as an exemplar's value).
	c := internSeries(tab, lsA)
	testkit.RequireLabelSets(t, []labels.Labels{lsB, lsA}, request(b, c))
	require.True(t, e.Carried())
}

// TestRW2CarriedTableChurn: series come and go between requests (their
// ids freed and reused), from a small pool of strings so that tables are
// carried; every request decodes to its series' labels.
func TestRW2CarriedTableChurn(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tab := newTestTable()
	in := tab.strings
	_ = in
	e := newRW2Encoder(tab)
	pool := []string{"a", "b", "c", "d", "e", "f", "g", "h", "up", "job", "node", "x", "y"}
	type live struct {
		ls labels.Labels
		s  *encodedSeries
	}
	var series []*live
	carried := 0
	for round := range 400 {
		for range r.IntN(4) { // new series
			ls := labels.FromStrings("__name__", pool[r.IntN(len(pool))], "k", pool[r.IntN(len(pool))], pool[r.IntN(len(pool))], fmt.Sprint(r.IntN(3)))
			l := &live{ls: ls, s: internSeries(tab, ls)}
			if r.IntN(3) == 0 {
				l.s = withMeta(tab, l.s, "counter", pool[r.IntN(len(pool))], "")
			}
			series = append(series, l)
		}
		for len(series) > 6 || (len(series) > 0 && r.IntN(4) == 0) { // gone
			i := r.IntN(len(series))
			tab.release(series[i].s.set)
			series = append(series[:i], series[i+1:]...)
		}
		e.Reset()
		if e.Carried() {
			carried++
		}
		var want []labels.Labels
		for range 1 + r.IntN(40) {
			for _, l := range series {
				e.AddSample(l.s, int64(round), 1, 0)
				want = append(want, l.ls)
			}
		}
		req := rw2Decoded(t, e.Bytes())
		got := rw2LabelsOf(t, req)
		require.Len(t, got, len(want), "round %d", round)
		for i := range want {
			testkit.RequireLabels(t, want[i], got[i], "round %d entry %d", round, i)
		}
		for i, ts := range req.Timeseries {
			if help := ts.Metadata.HelpRef; help != 0 {
				require.Contains(t, pool, req.Symbols[help], "round %d entry %d", round, i)
			}
		}
	}
	require.Greater(t, carried, 100)
	require.Less(t, carried, 400)
}

// TestRW2CarryRule: when a table is carried to the next request and when
// it starts afresh.
func TestRW2CarryRule(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	series := func(n int, labelsOf func(i int) labels.Labels) []*encodedSeries {
		out := make([]*encodedSeries, n)
		for i := range out {
			out[i] = internSeries(tab, labelsOf(i))
		}
		return out
	}
	request := func(e *rw2Encoder, ss []*encodedSeries) {
		e.Reset()
		for i := range ss {
			e.AddSample(ss[i], 1, 1, 0)
		}
		rw2Decoded(t, e.Bytes())
	}

	t.Run("unique strings in every series are never carried", func(t *testing.T) {
		e := newRW2Encoder(tab)
		for round := range 5 {
			pods := series(200, func(i int) labels.Labels {
				return labels.FromStrings("__name__", "kube_pod_info", "namespace", "default",
					"uid", fmt.Sprintf("%08d-1b4e-4c1a-9f4e-%012d", round, i))
			})
			request(e, pods)
			e.Reset()
			require.False(t, e.Carried(), "round %d", round)
		}
	})

	t.Run("a table that keeps growing starts afresh", func(t *testing.T) {
		e := newRW2Encoder(tab)
		host := func(h int) []*encodedSeries {
			return series(1000, func(i int) labels.Labels {
				return labels.FromStrings("__name__", fmt.Sprintf("node_metric_%d", i%100), "instance", fmt.Sprintf("host-%d:9100", h), "cpu", fmt.Sprint(i/100))
			})
		}
		request(e, host(0))
		carried := 0
		for h := 1; h < 100; h++ {
			e.Reset()
			if !e.Carried() {
				break
			}
			carried++
			// Each host adds one string; beside the first table's 100
			// metric names, growing by half takes about 50 hosts.
			ss := host(h)
			for i := range ss {
				e.AddSample(ss[i], 1, 1, 0)
			}
			rw2Decoded(t, e.Bytes())
		}
		t.Logf("carried over %d requests", carried)
		require.Greater(t, carried, 20, "carried while it grew a little")
		require.Less(t, carried, 99, "started afresh once it had grown by half")
	})

	t.Run("a small request after a carried table ends it", func(t *testing.T) {
		e := newRW2Encoder(tab)
		ss := series(100, func(i int) labels.Labels {
			return labels.FromStrings("__name__", "up", "instance", fmt.Sprintf("host-%d", i%10), "job", "node")
		})
		request(e, ss)
		request(e, ss)
		require.True(t, e.Carried())
		request(e, ss[:1]) // a table of 14 strings for one entry
		e.Reset()
		require.False(t, e.Carried())
	})
}
