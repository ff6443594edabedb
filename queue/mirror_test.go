package queue

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// mirrorRules drop debug_.* and add tier="gold" to job="special".
var mirrorRules = []*relabel.Config{{
	SourceLabels: model.LabelNames{"__name__"}, Regex: relabel.MustNewRegexp("debug_.*"),
	Action: relabel.Drop, NameValidationScheme: model.UTF8Validation,
}, {
	SourceLabels: model.LabelNames{"job"}, Regex: relabel.MustNewRegexp("special"),
	TargetLabel: "tier", Replacement: "gold", Action: relabel.Replace, NameValidationScheme: model.UTF8Validation,
}}

// TestSeriesCacheMirrors: a lane's cache holds a bit, not an entry, for a
// series first holds as the lane would; what its relabelling changes or
// drops is its own. When first forgets a mirrored series (new labels for
// its ref, a reset), the lane forgets it too, with its counts and metric
// names; a series stored again is still mirrored.
func TestSeriesCacheMirrors(t *testing.T) {
	tab := newTestTable()
	first := newSeriesCache(labels.EmptyLabels(), nil, tab, false)
	other := newSeriesCache(labels.EmptyLabels(), mirrorRules, tab, false)
	other.lane, other.names = 1, map[string]int{} // RW1 metadata counts names
	both := func(segment int, series ...record.RefSeries) {
		first.store(series, segment)
		other.storeAfter(series, segment, first)
	}
	node := labels.FromStrings("__name__", "up", "job", "node")
	both(0,
		record.RefSeries{Ref: 1, Labels: node},
		record.RefSeries{Ref: 2, Labels: labels.FromStrings("__name__", "debug_x", "job", "node")},
		record.RefSeries{Ref: 3, Labels: labels.FromStrings("__name__", "up", "job", "special")},
		record.RefSeries{Ref: 4, Labels: labels.FromStrings("__name__", "requests", "job", "node")},
		record.RefSeries{Ref: 5, Labels: labels.FromStrings("__name__", "up", "job", "node2")},
	)
	for _, ref := range []record.Ref{1, 4, 5} {
		s, mirrored := other.lookup(ref)
		require.True(t, mirrored, "ref %d", ref)
		require.Same(t, first.get(ref), s)
		require.True(t, other.series.at(ref) == nil || other.series.at(ref).state == seriesUnknown, "no entry of its own")
	}
	require.Equal(t, seriesDropped, other.get(2).state)
	_, mirrored := other.lookup(3)
	require.False(t, mirrored, "relabelled: its own")
	require.Equal(t, 4, other.kept)
	require.Equal(t, map[string]int{"up": 3, "requests": 1}, other.names)

	// A checkpoint repeats 1; 4 comes back with labels other drops.
	both(2, record.RefSeries{Ref: 1, Labels: node}, record.RefSeries{Ref: 4, Labels: labels.FromStrings("__name__", "debug_y", "job", "node")})
	_, mirrored = other.lookup(1)
	require.True(t, mirrored)
	require.EqualValues(t, 2, first.get(1).segment)
	require.Equal(t, seriesDropped, other.get(4).state)
	require.Equal(t, []string{"requests"}, other.gone)
	require.Equal(t, 3, other.kept)
	require.Equal(t, 2, other.dropped, "2 and 4")
	other.gone = other.gone[:0]

	// Series last stored before segment 2 go: 2, 3 and 5 (mirrored).
	first.reset(2)
	other.resetAfter(2, first)
	require.Nil(t, other.get(5))
	require.Nil(t, other.get(3))
	require.Nil(t, other.get(2))
	require.Equal(t, 1, other.kept, "1")
	require.Equal(t, 1, other.dropped, "4")
	require.Equal(t, map[string]int{"up": 1}, other.names)
	_, mirrored = other.lookup(1)
	require.True(t, mirrored)
}

// TestSeriesCacheMirrorCostsABit: a lane whose relabelling changes nothing
// of a thousand series grows no slice of entries.
func TestSeriesCacheMirrorCostsABit(t *testing.T) {
	tab := newTestTable()
	first := newSeriesCache(labels.EmptyLabels(), nil, tab, false)
	other := newSeriesCache(labels.EmptyLabels(), mirrorRules, tab, false)
	other.lane = 1
	series := make([]record.RefSeries, 1000)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "up", "i", fmt.Sprint(i))}
	}
	first.store(series, 0)
	other.storeAfter(series, 0, first)
	require.Equal(t, 1000, other.kept)
	require.Empty(t, other.series.pages)
	require.Empty(t, other.series.sparse)
}

// TestSeriesCacheOwnTakesOver: what a queue changes on a series (an RW2
// exemplar held for it) is its own: own gives a mirrored series an entry
// of the lane's, with first's encoding, and first's entry is untouched.
func TestSeriesCacheOwnTakesOver(t *testing.T) {
	first, other := twoLanes(t, mirrorRules[0], labels.FromStrings("__name__", "debug_x"))
	s := other.own(1)
	require.NotNil(t, s)
	s.held = true
	_, mirrored := other.lookup(1)
	require.False(t, mirrored)
	require.Same(t, first.get(1).data, other.get(1).data)
	require.False(t, first.get(1).held)
	require.Equal(t, 1, other.kept)
	require.Nil(t, other.own(7), "unknown")
}

// TestSeriesCacheUnmirrorsWhenFirstChanges: a call with another first (the
// first lane left the tee) or none makes the mirrored series the lane's
// own, holding the old first's encodings; what the old first does after
// that does not reach the lane.
func TestSeriesCacheUnmirrorsWhenFirstChanges(t *testing.T) {
	first, other := twoLanes(t, mirrorRules[0], labels.FromStrings("__name__", "up", "job", "other"))
	data := first.get(1).data
	other.storeAfter([]record.RefSeries{{Ref: 3, Labels: labels.FromStrings("__name__", "later")}}, 1, nil)
	for _, ref := range []record.Ref{1, 2} {
		_, mirrored := other.lookup(ref)
		require.False(t, mirrored, "ref %d", ref)
	}
	require.Same(t, data, other.get(1).data)
	require.True(t, other.get(1).shared, "first's to retire")
	require.Equal(t, 3, other.kept)

	first.reset(5) // first forgets everything; the lane keeps its own
	require.Nil(t, first.get(1))
	require.Same(t, data, other.get(1).data)
}

// TestSeriesCacheMirrorOfFreedPage: should first forget its series (and
// free their page) without the lane being called after it, the lane finds
// them unknown, and does not fail.
func TestSeriesCacheMirrorOfFreedPage(t *testing.T) {
	first, other := twoLanes(t, mirrorRules[0], labels.FromStrings("__name__", "up", "job", "other"))
	first.reset(5)
	require.Nil(t, first.series.pages[0], "freed")
	require.Nil(t, other.get(1))
	require.Nil(t, other.own(2))
	other.unmirror()
	require.Zero(t, other.kept)
}

// TestMirroredExemplars: an RW2 exemplar that joins its series' sample
// leaves the series mirrored; only one held for the series' next sample
// gives the lane a slot of its own (held is the lane's), and the first's
// series is left as it was.
func TestMirroredExemplars(t *testing.T) {
	table := NewLabels()
	lane := func(index uint8, rules []*relabel.Config) (*Manager, *shard) {
		m, err := New(Options{Config: config.DefaultQueueConfig, Protocol: RW2, Sender: discard{}, Labels: table, Lane: index, RelabelConfigs: rules})
		require.NoError(t, err)
		sh := newShard(m.shards.parts)
		m.shards.shards = []*shard{sh}
		return m, sh
	}
	first, _ := lane(0, nil)
	other, sh := lane(1, mirrorRules)
	const n = 100
	series := make([]record.RefSeries, n)
	samples := make([]record.RefSample, n)
	exemplars := make([]record.RefExemplar, n)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "latency", "i", fmt.Sprint(i))}
		samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: 1000, V: 1}
		exemplars[i] = record.RefExemplar{Ref: record.Ref(i + 1), T: 1000, V: 1, Labels: labels.FromStrings("trace_id", fmt.Sprint(i))}
	}
	first.StoreSeries(series, 0)
	other.StoreSeriesAfter(first, series, 0)
	at := func(offset int64) record.Span {
		return record.Span{Start: record.Position{Offset: offset}, End: record.Position{Offset: offset + 1}}
	}
	require.Equal(t, n, other.AppendSamples(samples, at(0)))
	require.Equal(t, n, other.AppendExemplars(exemplars, at(1)), "each joins its sample")
	require.Empty(t, other.intake.series.series.pages, "still mirrored")

	f := sh.prepare(1, nil) // the samples go out: the next exemplar waits for the series' next sample
	sh.deliver(context.Background(), f, nil)
	sh.done(f.batch)
	require.Equal(t, 1, other.AppendExemplars(exemplars[:1], at(2)))
	s, mirrored := other.intake.series.lookup(1)
	require.False(t, mirrored, "held: a slot of its own")
	require.True(t, s.held)
	require.False(t, first.intake.series.get(1).held)
	_, mirrored = other.intake.series.lookup(2)
	require.True(t, mirrored)
}
