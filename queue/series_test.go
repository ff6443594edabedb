package queue

import (
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

func TestSeriesCache(t *testing.T) {
	drop := &relabel.Config{
		SourceLabels:         model.LabelNames{"__name__"},
		Regex:                relabel.MustNewRegexp("debug_.*"),
		Action:               relabel.Drop,
		NameValidationScheme: model.UTF8Validation,
	}
	c := newSeriesCache(labels.FromStrings("cluster", "eu", "job", "ignored"), []*relabel.Config{drop}, &Interner{})

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
	require.Equal(t, want, s.data.labels)
	require.Equal(t, AppendRW1Labels(nil, want), s.data.rw1)
	require.Len(t, s.data.rw2.Labels, 6)
	require.Equal(t, seriesDropped, c.get(2).state)
	require.NotNil(t, c.get(1<<40), "a far ref goes to the map")
	require.Less(t, len(c.dense), 1<<20, "and does not grow the slice")
	require.Nil(t, c.get(7))
	require.Equal(t, 2, c.kept)
	require.Equal(t, 1, c.dropped)

	// Stored again from a checkpoint with the same labels: only the segment
	// moves, the encoding is the same slice.
	data := c.get(1).data
	c.store([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node")}}, 5)
	require.Equal(t, 5, c.get(1).segment)
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

func TestSeriesCacheLookupAllocatesNothing(t *testing.T) {
	c := newSeriesCache(labels.EmptyLabels(), nil, nil)
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
	r1 := a.begin(p(0, 0), 3)
	r2 := a.begin(p(0, 100), 2)
	r3 := a.begin(p(1, 0), 1)
	low, ok := a.lowest()
	require.True(t, ok)
	require.Equal(t, p(0, 0), low)
	require.Equal(t, 6, a.pendingSamples())

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
	require.Zero(t, a.pendingSamples())

	// Sequence numbers stay valid after the front is dropped.
	for i := 0; i < 1000; i++ {
		seq := a.begin(p(2, int64(i)), 1)
		a.done(seq, 1)
	}
	seq := a.begin(p(3, 0), 1)
	low, _ = a.lowest()
	require.Equal(t, p(3, 0), low)
	a.done(seq, 1)
	_, ok = a.lowest()
	require.False(t, ok)
	require.Less(t, len(a.pending), 10, "finished records are dropped")
}
