package storage

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

// TestAppendAllocatesNothing: appending to a known series, by ref or by
// labels, allocates nothing once the appender's slices are warm.
func TestAppendAllocatesNothing(t *testing.T) {
	db := openDB(t, t.TempDir(), Options{})
	defer closeDB(t, db)
	const n = 100
	ls := make([]labels.Labels, n)
	refs := make([]promstorage.SeriesRef, n)
	app := db.Appender(context.Background())
	for i := range ls {
		ls[i] = series(i)
		var err error
		refs[i], err = app.Append(0, ls[i], 1, 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())

	ts := int64(2)
	app = db.Appender(context.Background())
	// Warm the slices once.
	for i := 0; i < 2000; i++ {
		_, _ = app.Append(refs[i%n], ls[i%n], ts, 1)
	}
	require.NoError(t, app.Rollback())

	app = db.Appender(context.Background())
	i := 0
	byRef := testing.AllocsPerRun(1000, func() {
		if _, err := app.Append(refs[i%n], ls[i%n], ts, 1); err != nil {
			t.Fatal(err)
		}
		i++
	})
	byLabels := testing.AllocsPerRun(900, func() {
		if _, err := app.Append(0, ls[i%n], ts, 1); err != nil {
			t.Fatal(err)
		}
		i++
	})
	require.NoError(t, app.Commit())
	require.Zero(t, byRef, "allocations per Append by ref")
	require.Zero(t, byLabels, "allocations per Append by labels")
}
