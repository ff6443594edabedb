package queue

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDesiredShards(t *testing.T) {
	// One shard moves 2000 samples per 100 ms: 20,000 samples/s.
	base := shardInputs{Current: 4, Min: 1, Max: 50, SendSeconds: 0.1, BatchSize: 2000}
	cases := []struct {
		name string
		edit func(*shardInputs)
		want int
	}{
		{"steady, inside the band", func(in *shardInputs) { in.InRate = 50_000 }, 4},
		{"load above 80% of 4 shards", func(in *shardInputs) { in.InRate = 70_000 }, 5},
		{"load doubles", func(in *shardInputs) { in.InRate = 120_000 }, 8},
		{"backlog adds catch-up rate", func(in *shardInputs) { in.InRate = 50_000; in.Pending = 1_500_000 }, 7},
		{"load drops below 50% of fewer shards", func(in *shardInputs) { in.InRate = 20_000 }, 2},
		{"load falls a little: no step under 30 %", func(in *shardInputs) { in.Current = 10; in.InRate = 80_000 }, 10},
		{"load falls more: down in one step", func(in *shardInputs) { in.Current = 10; in.InRate = 60_000 }, 6},
		{"idle", func(in *shardInputs) { in.InRate = 0 }, 1},
		{"idle, min 3", func(in *shardInputs) { in.InRate = 0; in.Min = 3 }, 3},
		{"capped at max", func(in *shardInputs) { in.InRate = 10_000_000 }, 50},
		{"outage: nothing measured, keep", func(in *shardInputs) { in.InRate = 500_000; in.Pending = 1e7; in.SendSeconds = 0 }, 4},
		{"current outside the bounds is clamped", func(in *shardInputs) { in.Current = 80; in.SendSeconds = 0; in.Pending = 1 }, 50},
		{"idle without sends", func(in *shardInputs) { in.SendSeconds = 0 }, 1},
		{"slow endpoint needs more shards", func(in *shardInputs) { in.InRate = 50_000; in.SendSeconds = 1 }, 32},
		// After an outage: the average trails what the shards now move, and
		// the writer is 600 s ahead.
		{"outage over, far behind: one step", func(in *shardInputs) {
			in.InRate, in.Busy, in.Blocked, in.Behind = 20_000, 1, 1, 600
		}, 50},
		{"outage over, 60 s behind: twice what the shards move", func(in *shardInputs) {
			in.InRate, in.Busy, in.Blocked, in.Behind = 20_000, 1, 1, 60
		}, 10},
		{"outage over, shards 60% busy (the interval began in the outage)", func(in *shardInputs) {
			in.InRate, in.Busy, in.Blocked, in.Behind = 0, 0.6, 0.9, 600
		}, 50},
		{"shards saturated, under 30 s behind: left to the average rate", func(in *shardInputs) {
			in.InRate, in.Busy, in.Blocked, in.Behind = 40_000, 1, 1, 20
		}, 4},
		{"waiting briefly on a scrape's burst: keep", func(in *shardInputs) {
			in.InRate, in.Busy, in.Blocked, in.Behind = 50_000, 0.7, 0.1, 600
		}, 4},
		{"waiting, shards not busy (something else is slow): keep", func(in *shardInputs) {
			in.InRate, in.Busy, in.Blocked, in.Behind = 50_000, 0.3, 1, 600
		}, 4},
		{"behind but keeping up (not waiting): keep", func(in *shardInputs) {
			in.InRate, in.Busy, in.Behind = 50_000, 0.9, 600
		}, 4},
		{"timestamps in the future count as not behind", func(in *shardInputs) {
			in.InRate, in.Busy, in.Blocked, in.Behind = 40_000, 1, 1, -3600
		}, 4},
		// Floor: the most asked for over the stabilisation window.
		{"load falls, the window's floor holds", func(in *shardInputs) { in.Current = 10; in.InRate = 20_000; in.Floor = 8 }, 8},
		{"idle, the window's floor holds", func(in *shardInputs) { in.SendSeconds = 0; in.Floor = 3 }, 3},
		{"a floor above the count does not scale up", func(in *shardInputs) { in.InRate = 50_000; in.Floor = 9 }, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := base
			c.edit(&in)
			require.Equal(t, c.want, desiredShards(in))
		})
	}
}

// TestDesiredShardsDoesNotFlap feeds the rule a load with ±15% noise around
// levels that sit on the boundaries of small counts (the 2↔3 flapping of
// prometheus#9207): once settled, the count does not change.
func TestDesiredShardsDoesNotFlap(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, level := range []float64{15_000, 30_000, 40_000, 45_000, 60_000, 100_000} {
		in := shardInputs{Current: 1, Min: 1, Max: 50, SendSeconds: 0.1, BatchSize: 2000}
		changes := 0
		for i := 0; i < 200; i++ {
			in.InRate = level * (0.85 + 0.3*rng.Float64())
			next := desiredShards(in)
			if next != in.Current && i >= 10 {
				changes++
			}
			in.Current = next
		}
		require.LessOrEqual(t, changes, 1, "level %.0f: count changed %d times after settling", level, changes)
	}
}
