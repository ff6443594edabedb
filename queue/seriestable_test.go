package queue

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// TestSeriesTableFreesChurnedPages: Prometheus never gives a ref out
// twice, so under churn the refs grow for good; the table holds pages for
// the series alive, not for every ref given out.
func TestSeriesTableFreesChurnedPages(t *testing.T) {
	c := newSeriesCache(labels.EmptyLabels(), nil, newTestTable(), false)
	const n, rounds = 10_000, 20
	for round := range rounds {
		series := make([]record.RefSeries, n)
		for i := range series {
			series[i] = record.RefSeries{Ref: record.Ref(1 + round*n + i), Labels: churnLabels(round, i)}
		}
		c.store(series, round)
		c.reset(round) // what earlier rounds stored goes
		require.Equal(t, n, c.kept)
	}
	pages := 0
	for _, p := range c.series.pages {
		if p != nil {
			pages++
		}
	}
	require.LessOrEqual(t, pages, n>>seriesPageBits+2, "of %d refs given out", rounds*n)
	require.NotNil(t, c.get(record.Ref(rounds*n)))
	require.Nil(t, c.get(1))
}

// TestSeriesTableMovesFarRefsIntoPages: a ref far beyond the pages goes to
// the map; once the pages grow to reach it, it moves into them and is
// still found.
func TestSeriesTableMovesFarRefsIntoPages(t *testing.T) {
	c := newSeriesCache(labels.EmptyLabels(), nil, newTestTable(), false)
	far := record.Ref(1<<29 + 5) // page 1<<17: beyond 2*0+maxPageGap
	store := func(ref record.Ref) {
		c.store([]record.RefSeries{{Ref: ref, Labels: labels.FromStrings("__name__", fmt.Sprint("m", ref))}}, 0)
	}
	store(far)
	require.Contains(t, c.series.sparse, far)
	store(record.Ref(maxPageGap-1) << seriesPageBits) // the directory grows to maxPageGap pages
	store(record.Ref(1<<17+40) << seriesPageBits)     // and now reaches far's page
	require.NotContains(t, c.series.sparse, far)
	require.NotNil(t, c.get(far))
	require.Equal(t, 3, c.kept)
}
