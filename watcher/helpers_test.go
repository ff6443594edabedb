package watcher_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// recorder is a Consumer that keeps everything it is given. With a
// capacity, it accepts at most that many unacknowledged samples and waits
// for ack to free room, like a queue whose endpoint is slow.
type recorder struct {
	mu       sync.Mutex
	series   map[record.Ref]labels.Labels
	samples  []record.RefSample
	capacity int
	pending  []pendingBatch // unacknowledged, oldest first
	resets   []int
	hists    []record.RefHistogramSample
	fhists   []record.RefFloatHistogramSample
	exemplar []record.RefExemplar
	ready    chan struct{}
	refused  int // Append calls that could not take everything
}

type pendingBatch struct {
	start record.Position
	n     int
}

func newRecorder(capacity int) *recorder {
	return &recorder{series: map[record.Ref]labels.Labels{}, capacity: capacity, ready: make(chan struct{}, 1)}
}

func (r *recorder) StoreSeries(series []record.RefSeries, _ int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range series {
		r.series[s.Ref] = s.Labels.Copy() // the watcher reuses their memory
	}
}

func (r *recorder) StoreMetadata([]record.RefMetadata) {}

func (r *recorder) SeriesReset(segment int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets = append(r.resets, segment)
}

func (r *recorder) AppendSamples(s []record.RefSample, at record.Span) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(s)
	if r.capacity > 0 {
		n = min(n, r.capacity-r.pendingCount())
	}
	if n < len(s) {
		r.refused++
	}
	if n == 0 {
		return 0
	}
	r.samples = append(r.samples, s[:n]...)
	if r.capacity > 0 {
		r.pending = append(r.pending, pendingBatch{start: at.Start, n: n})
	}
	return n
}

func (r *recorder) AppendHistograms(h []record.RefHistogramSample, _ record.Span) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range h {
		r.hists = append(r.hists, record.RefHistogramSample{Ref: x.Ref, T: x.T, H: x.H.Copy()})
	}
	return len(h)
}

func (r *recorder) AppendFloatHistograms(h []record.RefFloatHistogramSample, _ record.Span) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range h {
		r.fhists = append(r.fhists, record.RefFloatHistogramSample{Ref: x.Ref, T: x.T, FH: x.FH.Copy()})
	}
	return len(h)
}

func (r *recorder) AppendExemplars(e []record.RefExemplar, _ record.Span) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exemplar = append(r.exemplar, e...)
	return len(e)
}

func (r *recorder) Ready() <-chan struct{} { return r.ready }

func (r *recorder) LowestPending() (record.Position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return record.Position{}, false
	}
	return r.pending[0].start, true
}

func (r *recorder) pendingCount() int {
	n := 0
	for _, p := range r.pending {
		n += p.n
	}
	return n
}

// ackAll acknowledges every pending sample and signals Ready.
func (r *recorder) ackAll() {
	r.mu.Lock()
	r.pending = nil
	r.mu.Unlock()
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (r *recorder) received() []record.RefSample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record.RefSample(nil), r.samples...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

// logWriter writes a log of series and samples with known content: series
// 1..nSeries, and per scrape one samples record of one sample per series at
// time scrape*1000, value scrape.
type logWriter struct {
	t       testing.TB
	w       *wal.Writer
	enc     record.Encoder
	nSeries int
	scrapes int
	base    int64 // timestamp of scrape 0, in ms
	buf     []byte
}

func newLogWriter(t testing.TB, dir string, nSeries, segmentSize int) *logWriter {
	w, err := wal.Open(dir, wal.Options{SegmentSize: segmentSize})
	require.NoError(t, err)
	lw := &logWriter{t: t, w: w, nSeries: nSeries}
	series := make([]record.RefSeries, nSeries)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "m", "i", fmt.Sprint(i))}
	}
	require.NoError(t, w.Log(lw.enc.Series(nil, series)))
	return lw
}

func (lw *logWriter) scrape() {
	samples := make([]record.RefSample, lw.nSeries)
	for i := range samples {
		samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: lw.base + int64(lw.scrapes)*1000, V: float64(lw.scrapes)}
	}
	lw.buf = lw.enc.Samples(lw.buf[:0], samples)
	require.NoError(lw.t, lw.w.Log(lw.buf))
	lw.scrapes++
}

func (lw *logWriter) close() { require.NoError(lw.t, lw.w.Close()) }

// run starts a watcher and returns a function that stops it and returns Run's error.
func run(t *testing.T, c watcher.Consumer, opts watcher.Options) (*watcher.Watcher, func() error) {
	w, err := watcher.New(c, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-errc
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return w, stop
}

// requireEverySampleOnce checks that got holds, in order per series, every
// sample of scrapes [from, to) of nSeries series, each exactly once.
func requireEverySampleOnce(t *testing.T, got []record.RefSample, nSeries, from, to int) {
	t.Helper()
	seen := map[[2]int64]int{}
	for _, s := range got {
		seen[[2]int64{int64(s.Ref), s.T}]++
	}
	for sc := from; sc < to; sc++ {
		for i := 1; i <= nSeries; i++ {
			n := seen[[2]int64{int64(i), int64(sc) * 1000}]
			require.Equal(t, 1, n, "series %d scrape %d seen %d times", i, sc, n)
		}
	}
	require.Len(t, got, nSeries*(to-from))
}
