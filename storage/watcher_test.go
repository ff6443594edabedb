package storage

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	uprecord "github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
)

// upstreamSink counts what upstream's remote-write watcher hands over.
type upstreamSink struct {
	mu      sync.Mutex
	labels  map[uint64]labels.Labels
	samples int
	unknown int
	target  int
	done    chan struct{}
}

func (s *upstreamSink) Append(ss []uprecord.RefSample) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range ss {
		if _, ok := s.labels[uint64(x.Ref)]; !ok {
			s.unknown++
		}
	}
	s.samples += len(ss)
	if s.samples == s.target {
		close(s.done)
	}
	return true
}

func (s *upstreamSink) StoreSeries(ss []uprecord.RefSeries, _ int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range ss {
		s.labels[uint64(x.Ref)] = x.Labels
	}
}
func (*upstreamSink) AppendExemplars([]uprecord.RefExemplar) bool                   { return true }
func (*upstreamSink) AppendHistograms([]uprecord.RefHistogramSample) bool           { return true }
func (*upstreamSink) AppendFloatHistograms([]uprecord.RefFloatHistogramSample) bool { return true }
func (*upstreamSink) StoreMetadata([]uprecord.RefMetadata)                          {}
func (*upstreamSink) UpdateSeriesSegment([]uprecord.RefSeries, int)                 {}
func (*upstreamSink) SeriesReset(int)                                               {}

// TestUpstreamWatcherSeesEverySample tails our WAL with upstream's
// remote-write watcher while we write across many segments.
func TestUpstreamWatcherSeesEverySample(t *testing.T) {
	dir := t.TempDir()
	const commits, perCommit = 500, 20
	sink := &upstreamSink{labels: map[uint64]labels.Labels{}, target: commits * perCommit, done: make(chan struct{})}
	var w *wlog.Watcher
	var wmu sync.Mutex
	db := openDB(t, dir, Options{SegmentSize: wal.PageSize, Notify: func() {
		wmu.Lock()
		defer wmu.Unlock()
		if w != nil {
			w.Notify()
		}
	}})
	defer closeDB(t, db)
	wmu.Lock()
	w = wlog.NewWatcher(wlog.NewWatcherMetrics(nil), wlog.NewLiveReaderMetrics(nil), nil, "test", sink, dir, false, false, false, nil)
	wmu.Unlock()
	w.Start()
	defer w.Stop()

	// Upstream's watcher sends only samples newer than its start, and
	// skips the samples of segments older than the newest one when it
	// starts ("start at now"): write one commit and wait until the watcher
	// has it, so that it tails from segment 0 before the writer moves on.
	t0 := time.Now().Add(time.Hour).UnixMilli()
	commit := func(c int) {
		app := db.Appender(context.Background())
		for i := 0; i < perCommit; i++ {
			_, err := app.Append(0, series(i), t0+int64(c), float64(c))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
	}
	// The watcher moves to a new segment on its own 100 ms check and then
	// waits for a notification; nudge it until it has what is written.
	nudge := time.NewTicker(10 * time.Millisecond)
	defer nudge.Stop()
	deadline := time.After(20 * time.Second)
	commit(0)
	for tailing := false; !tailing; {
		select {
		case <-nudge.C:
			w.Notify()
			sink.mu.Lock()
			tailing = sink.samples >= perCommit
			sink.mu.Unlock()
		case <-deadline:
			t.Fatal("upstream watcher never read the first commit")
		}
	}
	for c := 1; c < commits; c++ {
		commit(c)
	}
	for done := false; !done; {
		select {
		case <-sink.done:
			done = true
		case <-nudge.C:
			w.Notify()
		case <-deadline:
			sink.mu.Lock()
			defer sink.mu.Unlock()
			t.Fatalf("upstream watcher saw %d of %d samples", sink.samples, sink.target)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Equal(t, commits*perCommit, sink.samples)
	require.Zero(t, sink.unknown, "every sample's series was announced before it")
	require.Len(t, sink.labels, perCommit)
}
