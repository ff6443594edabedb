package remote

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfterSeconds bounds a delta-seconds Retry-After so that
// converting it to a time.Duration cannot overflow. The queue caps the
// delay it actually sleeps far below this.
const maxRetryAfterSeconds = math.MaxInt64 / int64(time.Second)

// parseRetryAfter interprets a Retry-After header value (RFC 9110 §10.2.3):
// either a number of seconds or an HTTP date, the latter taken relative to
// now. It returns 0 for an absent or unparsable value, and clamps a
// negative delay (a negative number or a date in the past) to 0, so that
// the caller falls back to its own backoff.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		switch {
		case secs <= 0:
			return 0
		case secs > maxRetryAfterSeconds:
			secs = maxRetryAfterSeconds
		}
		return time.Duration(secs) * time.Second
	} else if numErr, ok := err.(*strconv.NumError); ok && numErr.Err == strconv.ErrRange {
		// All digits but too large (or too small) for int64.
		if strings.HasPrefix(value, "-") {
			return 0
		}
		return time.Duration(maxRetryAfterSeconds) * time.Second
	}
	// http.ParseTime accepts the three date formats HTTP/1.1 allows.
	when, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	if d := when.Sub(now); d > 0 {
		return d
	}
	return 0
}
