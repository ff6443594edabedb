package watcher_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/watcher"
)

// TestUpstreamHead: upstream's TSDB head appends float samples, integer and
// float native histograms, exemplars and metadata while the watcher tails
// its WAL, through segment rotations, a head truncation (checkpoint and
// segment deletion) and more appends. Every sample arrives exactly once with
// the right labels, and the checkpoint's series reset reaches the consumer.
func TestUpstreamHead(t *testing.T) {
	dir := t.TempDir()
	opts := tsdb.DefaultOptions()
	opts.WALSegmentSize = wal.PageSize
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 1000
	opts.EnableMetadataWALRecords = true
	db, err := tsdb.Open(dir, nil, nil, opts, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()

	rec := newRecorder(0)
	w, stop := run(t, rec, watcher.Options{
		Dir: filepath.Join(dir, "wal"), Name: "upstream", Start: watcher.FromBeginning,
		SendExemplars: true, SendHistograms: true, CheckpointInterval: 1,
	})
	db.SetWriteNotified(w)

	const nSeries = 30
	lbls := make([]labels.Labels, nSeries)
	for i := range lbls {
		lbls[i] = labels.FromStrings("__name__", "requests_total", "instance", fmt.Sprintf("host-%d", i), "job", "api")
	}
	histLabels := labels.FromStrings("__name__", "latency_seconds", "job", "api")
	floatHistLabels := labels.FromStrings("__name__", "size_bytes", "job", "api")

	type key struct {
		lbls string
		t    int64
	}
	want := map[key]float64{}
	appendScrapes := func(from, to int) {
		for s := from; s < to; s++ {
			ts := int64(1_000_000 + s*15_000)
			app := db.Appender(context.Background())
			for i, l := range lbls {
				v := float64(s*100 + i)
				ref, err := app.Append(0, l, ts, v)
				require.NoError(t, err)
				want[key{l.String(), ts}] = v
				if i == 0 {
					_, err = app.AppendExemplar(ref, l, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", fmt.Sprint(s)), Value: v, Ts: ts, HasTs: true})
					require.NoError(t, err)
					_, err = app.UpdateMetadata(ref, l, metadata.Metadata{Type: model.MetricTypeCounter, Help: "requests", Unit: ""})
					require.NoError(t, err)
				}
			}
			h := &histogram.Histogram{Count: uint64(s + 1), Sum: float64(s), ZeroThreshold: 0.001, ZeroCount: 1, Schema: 1,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{int64(s)}}
			_, err := app.AppendHistogram(0, histLabels, ts, h, nil)
			require.NoError(t, err)
			fh := &histogram.FloatHistogram{Count: float64(s + 1), Sum: float64(s), Schema: 0,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{float64(s + 1)}}
			_, err = app.AppendHistogram(0, floatHistLabels, ts, nil, fh)
			require.NoError(t, err)
			require.NoError(t, app.Commit())
		}
	}
	appendScrapes(0, 200)
	testkit.Eventually(t, func() bool { return rec.count() == nSeries*200 }, "first part arrives")
	segs, err := wal.ListSegments(wal.OS, filepath.Join(dir, "wal"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(segs), 4, "the WAL must have rotated")

	// Head truncation: checkpoint the lower segments and delete them.
	require.NoError(t, db.Head().Truncate(int64(1_000_000+100*15_000)))
	cp, err := wal.LastCheckpoint(wal.OS, filepath.Join(dir, "wal"))
	require.NoError(t, err, "truncation made a checkpoint")

	appendScrapes(200, 400)
	testkit.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.samples) == nSeries*400 && len(rec.hists) == 400 && len(rec.fhists) == 400 && len(rec.exemplar) == 400
	}, "second part arrives")
	testkit.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.resets) > 0
	}, "series reset after the checkpoint")
	require.NoError(t, stop())

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, cp.Index, rec.resets[len(rec.resets)-1])
	seen := map[key]int{}
	for _, s := range rec.samples {
		l, ok := rec.series[s.Ref]
		require.True(t, ok, "sample of unknown series ref %d", s.Ref)
		k := key{l.String(), s.T}
		seen[k]++
		require.Equal(t, want[k], s.V, "value of %v", k)
	}
	require.Len(t, seen, len(want))
	for k, n := range seen {
		require.Equal(t, 1, n, "%v delivered %d times", k, n)
	}
	require.Len(t, rec.hists, 400)
	require.Len(t, rec.fhists, 400)
	for i, h := range rec.hists {
		testkit.RequireLabels(t, histLabels, rec.series[h.Ref])
		require.Equal(t, uint64(i+1), h.H.Count)
	}
	for _, h := range rec.fhists {
		testkit.RequireLabels(t, floatHistLabels, rec.series[h.Ref])
	}
	require.Len(t, rec.exemplar, 400)
}
