package demo

import (
	"context"
	"io"
	"math"
	"strconv"
	"time"
)

// DefaultProgressInterval is the interval of a Progress whose Interval is
// zero.
const DefaultProgressInterval = 5 * time.Second

// Counters are the cumulative totals a Progress reports, one function per
// stage of a sample's way; each returns the count so far (a counter's
// value, say). A nil function leaves its stage out of the line. They are
// called from Progress.Run's goroutine only.
type Counters struct {
	// Scraped is the number of samples scraped.
	Scraped func() float64
	// Written is the number of samples written to the WAL.
	Written func() float64
	// Sent is the number of samples sent to the remote endpoint.
	Sent func() float64
	// Acknowledged is the number of samples the receiver accepted.
	Acknowledged func() float64
}

// Progress prints one line per interval to Out with, for each stage of
// Counters, the rate per second over the interval and the total:
//
//	scraped 1,234/s (12,340)  written 1,234/s (12,340)  sent 1,200/s (12,000)  acknowledged 1,200/s (12,000)
//
// A total that goes down (a counter reset) counts from zero again; NaN and
// negative totals are shown as 0.
type Progress struct {
	// Out receives the lines.
	Out io.Writer
	// Counters are the totals to report.
	Counters Counters
	// Interval is the time between lines; zero means
	// DefaultProgressInterval.
	Interval time.Duration
	// Now is the clock the first interval starts at; nil means time.Now.
	// Run calls it once, after reading the starting totals.
	Now func() time.Time
	// Tick, when set, replaces the ticker of Interval: a line is printed
	// for each time received, with rates over the time since the one
	// before (or since Now at the start). Tests drive Progress with it.
	Tick <-chan time.Time
}

// stage is one column of the line.
type stage struct {
	name string
	get  func() float64
	last float64
}

// Run prints a line on each tick until ctx is done, then returns nil; it
// returns early with the error of a failed write to Out.
func (p *Progress) Run(ctx context.Context) error {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	tick := p.Tick
	if tick == nil {
		d := p.Interval
		if d <= 0 {
			d = DefaultProgressInterval
		}
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}

	var stages []stage
	for _, s := range []stage{
		{name: "scraped", get: p.Counters.Scraped},
		{name: "written", get: p.Counters.Written},
		{name: "sent", get: p.Counters.Sent},
		{name: "acknowledged", get: p.Counters.Acknowledged},
	} {
		if s.get != nil {
			s.last = total(s.get)
			stages = append(stages, s)
		}
	}
	last := now()
	var line []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case t := <-tick:
			secs := t.Sub(last).Seconds()
			last = t
			line = line[:0]
			for i := range stages {
				s := &stages[i]
				cur := total(s.get)
				delta := cur - s.last
				if delta < 0 { // reset
					delta = cur
				}
				s.last = cur
				rate := 0.0
				if secs > 0 {
					rate = delta / secs
				}
				if i > 0 {
					line = append(line, "  "...)
				}
				line = append(line, s.name...)
				line = append(line, ' ')
				line = appendGrouped(line, rate)
				line = append(line, "/s ("...)
				line = appendGrouped(line, cur)
				line = append(line, ')')
			}
			line = append(line, '\n')
			if _, err := p.Out.Write(line); err != nil {
				return err
			}
		}
	}
}

// total calls get and makes its result a count: NaN and negatives are 0.
func total(get func() float64) float64 {
	v := get()
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return v
}

// appendGrouped appends v rounded to an integer, with commas between
// groups of three digits (1,234,567).
func appendGrouped(dst []byte, v float64) []byte {
	v = math.Round(v)
	if math.IsInf(v, 0) || v >= math.MaxUint64 {
		return append(dst, "∞"...)
	}
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], uint64(v), 10)
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, d)
	}
	return dst
}
