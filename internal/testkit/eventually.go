package testkit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// How long Eventually waits, and how often it looks.
const (
	patience = 20 * time.Second
	tick     = 2 * time.Millisecond
)

// Eventually waits until cond returns true, calling it every couple of
// milliseconds, and fails the test with msgAndArgs (a message, or a format
// and its arguments) if it is still false after 20 seconds. cond runs on
// the caller's goroutine, so it may use require, and none of it is left
// running once Eventually returns.
func Eventually(t testing.TB, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			require.Fail(t, "condition still false after "+patience.String(), msgAndArgs...)
		case <-ticker.C:
		}
	}
}
