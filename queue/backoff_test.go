package queue

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/stretchr/testify/require"
)

func fixedRand(r float64) func() float64 { return func() float64 { return r } }

func TestBackoffDelay(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name       string
		b          Backoff
		attempt    int
		retryAfter time.Duration
		want       time.Duration
	}{
		{name: "defaults first retry, no jitter", b: Backoff{Rand: fixedRand(0.5)}, attempt: 1, want: 30 * ms},
		{name: "attempt 0 counts as 1", b: Backoff{Rand: fixedRand(0.5)}, attempt: 0, want: 30 * ms},
		{name: "negative attempt counts as 1", b: Backoff{Rand: fixedRand(0.5)}, attempt: -7, want: 30 * ms},
		{name: "jitter down clamped to min", b: Backoff{Rand: fixedRand(0)}, attempt: 1, want: 30 * ms},
		{name: "jitter up on first retry", b: Backoff{Rand: fixedRand(0.75)}, attempt: 1, want: 33 * ms},
		{name: "doubles", b: Backoff{Rand: fixedRand(0.5)}, attempt: 2, want: 60 * ms},
		{name: "doubles again", b: Backoff{Rand: fixedRand(0.5)}, attempt: 3, want: 120 * ms},
		{name: "jitter down mid range", b: Backoff{Rand: fixedRand(0)}, attempt: 3, want: 96 * ms},
		{name: "below cap", b: Backoff{Rand: fixedRand(0.5)}, attempt: 8, want: 3840 * ms},
		{name: "capped at max", b: Backoff{Rand: fixedRand(0.5)}, attempt: 9, want: 5 * time.Second},
		{name: "jitter up at max stays at max", b: Backoff{Rand: fixedRand(0.99)}, attempt: 20, want: 5 * time.Second},
		{name: "jitter down at max", b: Backoff{Rand: fixedRand(0)}, attempt: 20, want: 4 * time.Second},
		{name: "huge attempt does not overflow", b: Backoff{Rand: fixedRand(0.5)}, attempt: math.MaxInt, want: 5 * time.Second},
		{name: "configured min and max", b: Backoff{Min: 100 * ms, Max: 250 * ms, Rand: fixedRand(0.5)}, attempt: 2, want: 200 * ms},
		{name: "configured max caps", b: Backoff{Min: 100 * ms, Max: 250 * ms, Rand: fixedRand(0.5)}, attempt: 3, want: 250 * ms},
		{name: "max below min is raised to min", b: Backoff{Min: time.Second, Max: 10 * ms, Rand: fixedRand(0.5)}, attempt: 5, want: time.Second},
		{name: "retry-after longer than backoff wins", b: Backoff{Rand: fixedRand(0.5)}, attempt: 1, retryAfter: 2 * time.Second, want: 2 * time.Second},
		{name: "retry-after longer than max is honoured", b: Backoff{Rand: fixedRand(0.5)}, attempt: 1, retryAfter: 30 * time.Second, want: 30 * time.Second},
		{name: "retry-after shorter than backoff is ignored", b: Backoff{Rand: fixedRand(0.5)}, attempt: 3, retryAfter: 10 * ms, want: 120 * ms},
		{name: "retry-after capped at a minute", b: Backoff{Rand: fixedRand(0.5)}, attempt: 1, retryAfter: time.Hour, want: time.Minute},
		{name: "retry-after cap configurable", b: Backoff{MaxRetryAfter: 10 * time.Second, Rand: fixedRand(0.5)}, attempt: 1, retryAfter: time.Hour, want: 10 * time.Second},
		{name: "retry-after cap never below max", b: Backoff{Max: 2 * time.Minute, MaxRetryAfter: 10 * time.Second, Rand: fixedRand(0.5)}, attempt: 1, retryAfter: time.Hour, want: 2 * time.Minute},
		{name: "negative retry-after ignored", b: Backoff{Rand: fixedRand(0.5)}, attempt: 1, retryAfter: -time.Hour, want: 30 * ms},
		{name: "rand NaN clamped", b: Backoff{Rand: fixedRand(math.NaN())}, attempt: 3, want: 96 * ms},
		{name: "rand below 0 clamped", b: Backoff{Rand: fixedRand(-3)}, attempt: 3, want: 96 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.b.Delay(tc.attempt, tc.retryAfter))
		})
	}
	// A source returning 1 or more is clamped just below 1: at most 1.2·120ms.
	d := Backoff{Rand: fixedRand(7)}.Delay(3, 0)
	require.LessOrEqual(t, d, 144*time.Millisecond)
	require.Greater(t, d, 143*time.Millisecond)
}

func TestBackoffFromQueueConfig(t *testing.T) {
	b := NewBackoff(config.DefaultQueueConfig, fixedRand(0.5))
	require.Equal(t, defaultMinBackoff, b.Delay(1, 0))
	require.Equal(t, defaultMaxBackoff, b.Delay(100, 0))

	qc := config.DefaultQueueConfig
	qc.MinBackoff = model.Duration(time.Second)
	qc.MaxBackoff = model.Duration(3 * time.Second)
	b = NewBackoff(qc, fixedRand(0.5))
	require.Equal(t, time.Second, b.Delay(1, 0))
	require.Equal(t, 2*time.Second, b.Delay(2, 0))
	require.Equal(t, 3*time.Second, b.Delay(3, 0))
}

// TestBackoffBounds checks the invariants over random inputs: never zero,
// never below min, never above the applicable cap, and the exponential part
// never decreasing by more than the jitter allows.
func TestBackoffBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		minD := time.Duration(1 + rng.Int64N(int64(time.Second)))
		maxD := time.Duration(1 + rng.Int64N(int64(10*time.Second)))
		b := Backoff{Min: minD, Max: maxD, Rand: rng.Float64}
		attempt := rng.IntN(200) - 10
		var ra time.Duration
		if rng.IntN(2) == 0 {
			ra = time.Duration(rng.Int64N(int64(2 * time.Hour)))
		}
		d := b.Delay(attempt, ra)
		upper := max(minD, maxD)
		if ra > upper {
			upper = max(upper, min(ra, defaultMaxRetryAfter))
		}
		require.Positive(t, d)
		require.GreaterOrEqual(t, d, minD)
		require.LessOrEqual(t, d, upper, "min=%v max=%v attempt=%d retryAfter=%v", minD, maxD, attempt, ra)
	}
	// The zero value works with its own random source.
	d := Backoff{}.Delay(1, 0)
	require.GreaterOrEqual(t, d, defaultMinBackoff)
	require.LessOrEqual(t, d, defaultMinBackoff*6/5)
}

func TestBackoffHugeLimits(t *testing.T) {
	huge := time.Duration(math.MaxInt64)
	b := Backoff{Min: time.Second, Max: huge, MaxRetryAfter: huge, Rand: fixedRand(0.99)}
	for _, attempt := range []int{1, 30, 62, 63, 64, 1000, math.MaxInt} {
		d := b.Delay(attempt, 0)
		require.Positive(t, d, "attempt %d", attempt)
		require.GreaterOrEqual(t, d, time.Second, "attempt %d", attempt)
	}
	require.Equal(t, huge, b.Delay(math.MaxInt, 0))
	require.Equal(t, huge, b.Delay(1, huge))
}
