package storage

import (
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// Series are found by ref; a removed one is not, nor is one replaced by
// another series with its ref; a page whose series all went and whose refs
// were all handed out is freed, one with refs still to hand out is kept.
func TestRefIndex(t *testing.T) {
	var x refIndex
	series := func(ref record.Ref) *memSeries { return newMemSeries(ref, labels.EmptyLabels(), 0) }
	const n = 3 * refPageSize
	all := make([]*memSeries, n+1)
	for ref := record.Ref(1); ref <= n; ref++ {
		all[ref] = series(ref)
		x.set(all[ref])
	}
	require.Same(t, all[1], x.get(1))
	require.Same(t, all[n], x.get(n))
	require.Nil(t, x.get(n+1))
	require.Nil(t, x.get(1<<40))

	// Replaced: the old series' removal leaves the new one.
	other := series(5)
	x.set(other)
	x.remove(all[5], n+1)
	require.Same(t, other, x.get(5))

	// Pages 0 to 2 (refs 1..12287) emptied: freed; page 3, whose only
	// series (ref n) went but whose other refs are still to be handed out,
	// is kept.
	for ref := record.Ref(1); ref < n; ref++ {
		x.remove(all[ref], n+1)
	}
	x.remove(other, n+1)
	require.True(t, x.page(0) == nil && x.page(1) == nil && x.page(2) == nil, "emptied pages are freed")
	x.remove(all[n], n+1)
	require.True(t, x.page(3) != nil, "page 3 has refs still to hand out")
	count := 0
	x.forEach(func(*memSeries) { count++ })
	require.Zero(t, count)

	// A freed page comes back when a ref in it is set again.
	x.set(all[refPageSize+1])
	require.Same(t, all[refPageSize+1], x.get(refPageSize+1))
}

// Sets, gets and removals at once (run with -race): every series set and
// not removed is found.
func TestRefIndexConcurrent(t *testing.T) {
	var x refIndex
	const workers, each = 4, 3 * refPageSize
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ref := record.Ref(w*each + i + 1)
				s := newMemSeries(ref, labels.EmptyLabels(), 0)
				x.set(s)
				require.Same(t, s, x.get(ref))
				if i%2 == 0 {
					x.remove(s, uint64(workers*each+1))
				}
			}
		})
	}
	wg.Wait()
	count := 0
	x.forEach(func(*memSeries) { count++ })
	require.Equal(t, workers*each/2, count)
}

// A series set into a page while the page's last other series is removed
// is found afterwards: the page is either kept or replaced, never freed
// under it.
func TestRefIndexSetWhileFreeing(t *testing.T) {
	for range 20000 {
		var x refIndex
		a := newMemSeries(1, labels.EmptyLabels(), 0)
		b := newMemSeries(2, labels.EmptyLabels(), 0)
		x.set(a)
		var wg sync.WaitGroup
		wg.Go(func() { x.remove(a, refPageSize) }) // every ref of page 0 handed out
		wg.Go(func() { x.set(b) })
		wg.Wait()
		require.Same(t, b, x.get(2))
	}
}
