package watcher_test

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// counter is a Consumer that keeps no samples, only what checks them: the
// next expected timestamp per series. Until opened it accepts nothing, like
// a queue whose endpoint is down.
type counter struct {
	mu     sync.Mutex
	open   bool
	next   []int64 // by series ref
	n      int
	errors int
	ready  chan struct{}
	target int // when n reaches it, done is closed
	done   chan struct{}
}

func newCounter() *counter {
	return &counter{ready: make(chan struct{}, 1)}
}

func (c *counter) StoreSeries([]record.RefSeries, int)    {}
func (c *counter) StoreMetadata([]record.RefMetadata)     {}
func (c *counter) SeriesReset(int)                        {}
func (c *counter) Ready() <-chan struct{}                 { return c.ready }
func (c *counter) LowestPending() (record.Position, bool) { return record.Position{}, false }
func (c *counter) AppendHistograms(h []record.RefHistogramSample, _ record.Span) int {
	return len(h)
}
func (c *counter) AppendFloatHistograms(h []record.RefFloatHistogramSample, _ record.Span) int {
	return len(h)
}
func (c *counter) AppendExemplars(e []record.RefExemplar, _ record.Span) int { return len(e) }

func (c *counter) AppendSamples(s []record.RefSample, _ record.Span) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.open {
		return 0
	}
	for _, x := range s {
		for int(x.Ref) >= len(c.next) {
			c.next = append(c.next, 0)
		}
		if x.T != c.next[x.Ref] {
			c.errors++ // lost, duplicated or out of order
		}
		c.next[x.Ref] = x.T + 1000
	}
	c.n += len(s)
	if c.target > 0 && c.n == c.target {
		close(c.done)
	}
	return len(s)
}

func (c *counter) openUp() {
	c.mu.Lock()
	c.open = true
	c.mu.Unlock()
	c.ready <- struct{}{}
}

func (c *counter) count() (n, errors int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.errors
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestMemoryConstantWithBacklog: while the consumer refuses everything, the
// writer builds a backlog of 10 segments. The watcher's memory does not grow
// with it (it reads one record and waits), and once the consumer accepts,
// every sample arrives once, in order.
//
// The default suite uses 1 MiB segments; WALSHIP_SOAK_SEGMENT_MB=128 (make
// soak) runs it with Prometheus's default segment size, a 1.28 GiB backlog.
func TestMemoryConstantWithBacklog(t *testing.T) {
	segMB := 1
	if v := os.Getenv("WALSHIP_SOAK_SEGMENT_MB"); v != "" {
		var err error
		segMB, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	dir := t.TempDir()
	const nSeries = 1000
	lw := newLogWriter(t, dir, nSeries, segMB<<20)
	c := newCounter()
	w, stop := run(t, c, watcher.Options{Dir: dir, Name: "test"})
	lw.scrape()
	w.Notify()

	// A backlog of one segment, then of ten: the heap stays put.
	writeSegments := func(n int) {
		target := lw.w.Segment() + n
		for lw.w.Segment() < target {
			lw.scrape()
		}
	}
	writeSegments(1)
	oneSegment := heapInUse()
	writeSegments(9)
	tenSegments := heapInUse()
	t.Logf("heap in use with a backlog of 1 segment: %d KiB; of 10 segments: %d KiB (segment %d MiB)",
		oneSegment>>10, tenSegments>>10, segMB)
	require.Less(t, int64(tenSegments)-int64(oneSegment), int64(2<<20), "memory must not grow with the backlog")

	c.openUp()
	lw.close()
	want := nSeries * lw.scrapes
	testkit.Eventually(t, func() bool { n, _ := c.count(); return n == want }, "the whole backlog arrives")
	require.NoError(t, stop())
	_, errs := c.count()
	require.Zero(t, errs, "samples lost, duplicated or out of order")
}
