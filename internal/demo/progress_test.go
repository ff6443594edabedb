package demo

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lineWriter hands each Write to the test, which receives it in step with
// the ticks it sends.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// counter is a float counter the test sets and Progress reads.
type counter struct{ bits atomic.Uint64 }

func (c *counter) set(v float64) { c.bits.Store(math.Float64bits(v)) }
func (c *counter) get() float64  { return math.Float64frombits(c.bits.Load()) }

// startClock returns a Now for Progress that always says t0 and closes
// started on its first call: Run has read its baseline by then.
func startClock(t0 time.Time, started chan struct{}) func() time.Time {
	var once sync.Once
	return func() time.Time {
		once.Do(func() { close(started) })
		return t0
	}
}

func TestProgress(t *testing.T) {
	var scraped, written, sent, acked counter
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	scraped.set(100) // before Run: the baseline, not counted in the first rate
	tick := make(chan time.Time)
	out := make(lineWriter)
	started := make(chan struct{})
	p := &Progress{
		Out:      out,
		Counters: Counters{Scraped: scraped.get, Written: written.get, Sent: sent.get, Acknowledged: acked.get},
		Now:      startClock(t0, started),
		Tick:     tick,
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	<-started

	step := func(at time.Duration, s, w, se, a float64, want string) {
		t.Helper()
		scraped.set(s)
		written.set(w)
		sent.set(se)
		acked.set(a)
		tick <- t0.Add(at)
		require.Equal(t, want+"\n", <-out)
	}
	step(5*time.Second, 6270, 6270, 5000, 4000,
		"scraped 1,234/s (6,270)  written 1,254/s (6,270)  sent 1,000/s (5,000)  acknowledged 800/s (4,000)")
	step(10*time.Second, 12540, 12540, 12540, 12540,
		"scraped 1,254/s (12,540)  written 1,254/s (12,540)  sent 1,508/s (12,540)  acknowledged 1,708/s (12,540)")
	// Nothing new for 2.5s; then a reset, a NaN and a fractional rate.
	step(12500*time.Millisecond, 12540, 12540, 12540, 12540,
		"scraped 0/s (12,540)  written 0/s (12,540)  sent 0/s (12,540)  acknowledged 0/s (12,540)")
	step(13500*time.Millisecond, 1234567, 10, math.NaN(), 12540.6,
		"scraped 1,222,027/s (1,234,567)  written 10/s (10)  sent 0/s (0)  acknowledged 1/s (12,541)")

	cancel()
	require.NoError(t, <-done)
}

func TestProgressSkipsNilCounters(t *testing.T) {
	var sent counter
	t0 := time.Unix(0, 0)
	tick := make(chan time.Time)
	out := make(lineWriter)
	started := make(chan struct{})
	p := &Progress{Out: out, Counters: Counters{Sent: sent.get}, Now: startClock(t0, started), Tick: tick}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	<-started
	sent.set(10)
	tick <- t0.Add(time.Second)
	require.Equal(t, "sent 10/s (10)\n", <-out)
	// A tick at the same time as the previous one gives rate 0, not Inf.
	sent.set(20)
	tick <- t0.Add(time.Second)
	require.Equal(t, "sent 0/s (20)\n", <-out)
	cancel()
	require.NoError(t, <-done)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestProgressWriteError(t *testing.T) {
	tick := make(chan time.Time, 1)
	tick <- time.Now()
	p := &Progress{Out: failWriter{}, Counters: Counters{Sent: func() float64 { return 1 }}, Tick: tick}
	require.EqualError(t, p.Run(t.Context()), "disk on fire")
}

// TestProgressRealTicker runs with the real ticker and stops on ctx before
// it ticks.
func TestProgressRealTicker(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p := &Progress{Out: make(lineWriter), Interval: time.Hour}
	require.NoError(t, p.Run(ctx))
}

func TestAppendGrouped(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {0.4, "0"}, {0.5, "1"}, {999, "999"}, {1000, "1,000"}, {12345.6, "12,346"},
		{123456, "123,456"}, {1234567, "1,234,567"}, {math.Inf(1), "∞"}, {1e30, "∞"},
	} {
		require.Equal(t, tc.want, string(appendGrouped(nil, tc.v)), "%v", tc.v)
	}
}
