package queue

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/prometheus/prometheus/config"
)

// This file is the wait between attempts: jittered exponential backoff
// within queue_config's min_backoff and max_backoff, or the endpoint's
// Retry-After.

// Backoff defaults, as upstream's queue_config has them.
const (
	// defaultMinBackoff is the first retry delay when min_backoff is unset.
	defaultMinBackoff = 30 * time.Millisecond
	// defaultMaxBackoff is the longest computed retry delay when
	// max_backoff is unset.
	defaultMaxBackoff = 5 * time.Second
	// defaultMaxRetryAfter caps how long a server's Retry-After can make
	// the queue wait (unless max_backoff is longer still). Upstream sleeps
	// whatever the server says; walship keeps the gap between two tries at
	// most a minute so a confused or hostile endpoint cannot park a queue
	// for hours.
	defaultMaxRetryAfter = time.Minute
	// backoffJitter is the relative jitter applied to the exponential
	// delay: it is spread uniformly over ±20 % before clamping to
	// [Min, Max].
	backoffJitter = 0.2
)

// Backoff computes the delay before a retry: exponential from Min, doubling
// per attempt up to Max, with jitter, and stretched to honour a server's
// Retry-After up to MaxRetryAfter. It holds no state; the zero value uses
// the defaults and math/rand/v2 for jitter.
type Backoff struct {
	// Min is the delay before the first retry (min_backoff); defaultMinBackoff when <= 0.
	Min time.Duration
	// Max caps the exponential delay (max_backoff); defaultMaxBackoff when
	// <= 0, and raised to Min when below it.
	Max time.Duration
	// MaxRetryAfter caps a delay stretched by Retry-After;
	// defaultMaxRetryAfter when <= 0, and raised to Max when below it.
	MaxRetryAfter time.Duration
	// Rand returns a number in [0, 1) for the jitter; math/rand/v2's
	// Float64 when nil. Values outside [0, 1) are clamped into it.
	Rand func() float64
}

// NewBackoff returns the backoff for a queue_config: its min_backoff and
// max_backoff, with rnd as the jitter source (nil for math/rand/v2).
func NewBackoff(qc config.QueueConfig, rnd func() float64) Backoff {
	return Backoff{
		Min:  time.Duration(qc.MinBackoff),
		Max:  time.Duration(qc.MaxBackoff),
		Rand: rnd,
	}
}

// limits returns Min, Max and MaxRetryAfter with the defaults applied and
// min <= max <= maxRetryAfter.
func (b Backoff) limits() (minD, maxD, maxRA time.Duration) {
	minD, maxD, maxRA = b.Min, b.Max, b.MaxRetryAfter
	if minD <= 0 {
		minD = defaultMinBackoff
	}
	if maxD <= 0 {
		maxD = defaultMaxBackoff
	}
	maxD = max(maxD, minD)
	if maxRA <= 0 {
		maxRA = defaultMaxRetryAfter
	}
	maxRA = max(maxRA, maxD)
	return minD, maxD, maxRA
}

// Delay returns how long to wait before retry number attempt (1 for the
// first retry, as the Retry-After header counts; values below 1 count as
// 1), given the server's Retry-After (0 when it gave none).
//
// The exponential delay is Min·2^(attempt-1), jittered by ±backoffJitter
// and clamped to [Min, Max]. A positive retryAfter raises the delay to at
// least retryAfter, but never above MaxRetryAfter. The result is never
// zero and never above max(Max, MaxRetryAfter).
func (b Backoff) Delay(attempt int, retryAfter time.Duration) time.Duration {
	minD, maxD, maxRA := b.limits()

	base := minD
	for i := 1; i < attempt && base < maxD; i++ {
		if base > maxD/2 {
			base = maxD // doubling would pass Max (or overflow)
			break
		}
		base *= 2
	}

	// Scale by a factor in [1-J, 1+J], in float64 and clamped before
	// converting back so that a huge Max cannot overflow.
	f := float64(base) * (1 - backoffJitter + 2*backoffJitter*b.random())
	d := maxD
	if f < float64(maxD) {
		d = max(time.Duration(f), minD)
	}

	if retryAfter > d {
		d = min(retryAfter, maxRA)
	}
	return d
}

func (b Backoff) random() float64 {
	var r float64
	if b.Rand != nil {
		r = b.Rand()
	} else {
		r = rand.Float64()
	}
	if !(r >= 0) { // also NaN
		return 0
	}
	if r >= 1 {
		return math.Nextafter(1, 0)
	}
	return r
}
