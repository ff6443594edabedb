package remote

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A set of members whose group keeps re-forming and splitting again (an
// endpoint slower than the group lag, or refusing everything for good)
// waits twice as long each time, up to an hour; another set waits the
// base; and a set that has not re-formed for two hours waits the base
// again.
func TestRegroupWaitsBackOff(t *testing.T) {
	w := regroupWaits{base: 5 * time.Minute, sets: map[string]regroupWait{}}
	now := time.Unix(0, 0)
	var waited []time.Duration
	for range 6 {
		wait := w.of("a,b")
		waited = append(waited, wait)
		now = now.Add(wait)
		w.forget(now)
		w.regrouped("a,b", now)
	}
	require.Equal(t, []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}, waited)
	require.Equal(t, 5*time.Minute, w.of("c"))
	w.forget(now.Add(2 * time.Hour))
	require.Equal(t, time.Hour, w.of("a,b"))
	w.forget(now.Add(2*time.Hour + time.Second))
	require.Equal(t, 5*time.Minute, w.of("a,b"))
}
