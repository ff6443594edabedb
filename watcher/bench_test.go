package watcher_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	uprecord "github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/watcher"
)

// BenchmarkWatcher reads the same log with walship's watcher and upstream's,
// each into a consumer that only counts: 1000 series × 1000 scrapes (1M
// samples, one record per scrape), uncompressed, in one segment, with
// timestamps in the future so that upstream's watcher (which starts at
// "now" and only tails the newest segment) sends them all. One op is the
// whole log, from start to the last sample handed over.
func BenchmarkWatcher(b *testing.B) {
	parent := b.TempDir()
	dir := filepath.Join(parent, "wal")
	lw := newLogWriter(b, dir, 1000, wal.DefaultSegmentSize)
	lw.base = time.Now().Add(time.Hour).UnixMilli()
	for i := 0; i < 1000; i++ {
		lw.scrape()
	}
	lw.close()
	const total = 1000 * 1000

	b.Run("impl=walship", func(b *testing.B) {
		b.ReportAllocs()
		metrics := watcher.NewMetrics(nil)
		for i := 0; i < b.N; i++ {
			c := newCounter()
			c.open, c.target, c.done = true, total, make(chan struct{})
			w, err := watcher.New(c, watcher.Options{Dir: dir, Name: "bench", Start: watcher.FromBeginning, Metrics: metrics})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			<-c.done
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("impl=upstream", func(b *testing.B) {
		b.ReportAllocs()
		metrics := wlog.NewWatcherMetrics(nil)
		readerMetrics := wlog.NewLiveReaderMetrics(nil)
		for i := 0; i < b.N; i++ {
			c := &upstreamCounter{target: total, done: make(chan struct{})}
			w := wlog.NewWatcher(metrics, readerMetrics, nil, "bench", c, parent, false, false, false, nil)
			w.Start()
			// Upstream reads only when notified (or every 15 s): notify it
			// as a busy writer would, so that the op measures reading.
			tick := time.NewTicker(time.Millisecond)
		wait:
			for {
				select {
				case <-c.done:
					break wait
				case <-tick.C:
					w.Notify()
				}
			}
			tick.Stop()
			w.Stop()
		}
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	})
}

// upstreamCounter is the counting consumer for upstream's watcher.
type upstreamCounter struct {
	mu     sync.Mutex
	next   []int64
	n      int
	target int
	done   chan struct{}
}

func (c *upstreamCounter) Append(s []uprecord.RefSample) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range s {
		for int(x.Ref) >= len(c.next) {
			c.next = append(c.next, 0)
		}
		c.next[x.Ref] = x.T + 1000
	}
	c.n += len(s)
	if c.n == c.target {
		close(c.done)
	}
	return true
}
func (c *upstreamCounter) AppendExemplars([]uprecord.RefExemplar) bool                   { return true }
func (c *upstreamCounter) AppendHistograms([]uprecord.RefHistogramSample) bool           { return true }
func (c *upstreamCounter) AppendFloatHistograms([]uprecord.RefFloatHistogramSample) bool { return true }
func (c *upstreamCounter) StoreSeries([]uprecord.RefSeries, int)                         {}
func (c *upstreamCounter) StoreMetadata([]uprecord.RefMetadata)                          {}
func (c *upstreamCounter) UpdateSeriesSegment([]uprecord.RefSeries, int)                 {}
func (c *upstreamCounter) SeriesReset(int)                                               {}
