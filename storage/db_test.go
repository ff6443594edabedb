package storage

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/agent"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/inspect"
	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

var _ promstorage.Appendable = (*DB)(nil)

func testHistogram(i int) *histogram.Histogram {
	return &histogram.Histogram{
		Count: uint64(4*i + 7), ZeroCount: 2, ZeroThreshold: 0.001, Sum: 18.4 * float64(i+1), Schema: 1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets: []int64{int64(i + 1), 1, -1, 0},
	}
}

// appendScript writes the same transactions to any appendable: floats,
// histograms, float histograms, exemplars and metadata of several series
// over three commits.
func appendScript(t *testing.T, db promstorage.Appendable) {
	t.Helper()
	ctx := context.Background()
	for c := 0; c < 3; c++ {
		app := db.Appender(ctx)
		for i := 0; i < 5; i++ {
			ref, err := app.Append(0, series(i), int64(1000*c+i+1), float64(c*10+i))
			require.NoError(t, err)
			if c == 0 {
				_, err = app.UpdateMetadata(ref, series(i), metadata.Metadata{Type: model.MetricTypeCounter, Unit: "seconds", Help: "help " + series(i).String()})
				require.NoError(t, err)
			}
			_, err = app.AppendExemplar(ref, series(i), exemplar.Exemplar{Labels: labels.FromStrings("trace_id", "abc"), Value: float64(c), Ts: int64(1000*c + i + 1), HasTs: true})
			require.NoError(t, err)
		}
		h := labels.FromStrings("__name__", "hist")
		_, err := app.AppendHistogram(0, h, int64(1000*c+1), testHistogram(c), nil)
		require.NoError(t, err)
		fh := labels.FromStrings("__name__", "fhist")
		_, err = app.AppendHistogram(0, fh, int64(1000*c+1), nil, testHistogram(c).ToFloat(nil))
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
}

func TestAppendRoundTrip(t *testing.T) {
	dir := t.TempDir()
	notified := 0
	db := openDB(t, dir, Options{Notify: func() { notified++ }})
	appendScript(t, db)
	require.NoError(t, db.Close())
	require.Equal(t, 3, notified)

	ours := readLog(t, wal.OS, db.WALDir())
	require.Len(t, ours.series, 7)
	require.Len(t, ours.samples, 15)
	require.Len(t, ours.histograms, 3)
	require.Len(t, ours.floats, 3)
	require.Len(t, ours.exemplars, 15)
	require.Len(t, ours.meta, 5)
	// First commit: series, metadata, samples, histograms, float histograms, exemplars.
	require.Equal(t, []record.Type{record.Series, record.Metadata, record.Samples, record.HistogramSamples,
		record.FloatHistogramSamples, record.Exemplars}, ours.types[:6])
	for i, s := range ours.samples {
		testkit.RequireLabels(t, series(i%5), ours.series[s.Ref], "sample %d", i)
	}
	require.Equal(t, testHistogram(2), ours.histograms[2].H)

	up := readUpstream(t, db.WALDir())
	require.Len(t, up.series, 7)
	require.Len(t, up.samples, len(ours.samples))
	for i := range ours.samples {
		require.Equal(t, uint64(ours.samples[i].Ref), uint64(up.samples[i].Ref))
		require.Equal(t, ours.samples[i].T, up.samples[i].T)
		require.Equal(t, ours.samples[i].V, up.samples[i].V)
	}
	require.Len(t, up.histograms, 3)
	require.Equal(t, testHistogram(1), up.histograms[1].H)
	require.Len(t, up.floats, 3)
	require.Len(t, up.exemplars, 15)
	require.Len(t, up.meta, 5)
	require.Equal(t, "seconds", up.meta[0].Unit)
}

// TestOracleUpstreamAgent writes the same transactions with upstream's
// agent DB and with ours, and compares what upstream's decoder reads back.
func TestOracleUpstreamAgent(t *testing.T) {
	ourDir, upDir := t.TempDir(), t.TempDir()
	db := openDB(t, ourDir, Options{})
	appendScript(t, db)
	require.NoError(t, db.Close())

	opts := agent.DefaultOptions()
	opts.NoLockfile = true
	opts.EnableMetadataWALRecords = true
	opts.WALCompression = compression.Snappy
	udb, err := agent.Open(slog.New(slog.DiscardHandler), nil, nil, upDir, opts)
	require.NoError(t, err)
	appendScript(t, udb)
	require.NoError(t, udb.Close())

	ours := readUpstream(t, filepath.Join(ourDir, "wal"))
	theirs := readUpstream(t, filepath.Join(upDir, "wal"))
	require.Equal(t, theirs.types, ours.types)
	require.Equal(t, theirs.series, ours.series)
	require.Equal(t, theirs.samples, ours.samples)
	require.Equal(t, theirs.histograms, ours.histograms)
	require.Equal(t, theirs.floats, ours.floats)
	require.Equal(t, theirs.exemplars, ours.exemplars)
	require.Equal(t, theirs.meta, ours.meta)
}

func TestOutOfOrderLikeUpstream(t *testing.T) {
	reg := prometheus.NewRegistry()
	db := openDB(t, t.TempDir(), Options{Registerer: reg})
	defer closeDB(t, db)
	l := labels.FromStrings("__name__", "x")
	app := db.Appender(context.Background())
	ref, err := app.Append(0, l, 100, 1)
	require.NoError(t, err)
	require.NoError(t, app.Commit())

	app = db.Appender(context.Background())
	_, err = app.Append(ref, l, 100, 2) // same timestamp: refused as upstream does
	require.ErrorIs(t, err, promstorage.ErrOutOfOrderSample)
	_, err = app.Append(ref, l, 99, 2)
	require.ErrorIs(t, err, promstorage.ErrOutOfOrderSample)
	_, err = app.AppendHistogram(ref, l, 50, testHistogram(0), nil)
	require.ErrorIs(t, err, promstorage.ErrOutOfOrderSample)
	_, err = app.AppendSTZeroSample(ref, l, 200, 90)
	require.ErrorIs(t, err, promstorage.ErrOutOfOrderST)
	_, err = app.AppendSTZeroSample(ref, l, 200, 200)
	require.ErrorIs(t, err, promstorage.ErrSTNewerThanSample)
	_, err = app.AppendSTZeroSample(ref, l, 200, 150)
	require.NoError(t, err)
	_, err = app.Append(ref, l, 200, 3)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	require.Equal(t, 3.0, testutil.ToFloat64(db.metrics.outOfOrder))

	app = db.Appender(context.Background())
	_, err = app.Append(0, labels.EmptyLabels(), 1, 1)
	require.ErrorIs(t, err, ErrInvalidSample)
	_, err = app.AppendExemplar(12345, labels.EmptyLabels(), exemplar.Exemplar{})
	require.ErrorIs(t, err, ErrUnknownSeries)
	require.NoError(t, app.Rollback())
}

// TestRollbackKeepsLogConsistent: a series created in a rolled-back
// transaction gets its series record with the first commit that uses it.
func TestRollbackKeepsLogConsistent(t *testing.T) {
	db := openDB(t, t.TempDir(), Options{})
	l := labels.FromStrings("__name__", "x")
	app := db.Appender(context.Background())
	ref, err := app.Append(0, l, 1, 1)
	require.NoError(t, err)
	require.NoError(t, app.Rollback())

	app = db.Appender(context.Background())
	ref2, err := app.Append(ref, l, 2, 2)
	require.NoError(t, err)
	require.Equal(t, ref, ref2)
	require.NoError(t, app.Commit())
	app = db.Appender(context.Background())
	_, err = app.Append(ref, l, 3, 3)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	require.NoError(t, db.Close())

	c := readLog(t, wal.OS, db.WALDir())
	require.Len(t, c.seriesOrder, 1, "one series record, written once")
	require.Equal(t, []record.Type{record.Series, record.Samples, record.Samples}, c.types)
	require.Len(t, c.samples, 2)
}

// TestReopenKeepsRefsAndSurvivesTornTail writes, closes, cuts the last
// segment inside its last record and reopens: the refs are the same,
// everything before the cut is there, and the log is clean again.
func TestReopenKeepsRefsAndSurvivesTornTail(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	db := openDB(t, dir, Options{Registerer: reg})
	refs := map[string]promstorage.SeriesRef{}
	for c := 0; c < 10; c++ {
		app := db.Appender(context.Background())
		for i := 0; i < 20; i++ {
			ref, err := app.Append(0, series(i), int64(c+1), float64(c))
			require.NoError(t, err)
			refs[series(i).String()] = ref
		}
		require.NoError(t, app.Commit())
	}
	require.NoError(t, db.Close())

	// Find where the last record starts and ends, and cut in its middle.
	before := readLog(t, wal.OS, db.WALDir())
	require.Len(t, before.samples, 200)
	lastStart := before.sampleStarts[len(before.sampleStarts)-1]
	path := wal.SegmentPath(db.WALDir(), lastStart.Segment)
	require.NoError(t, os.Truncate(path, lastStart.Offset+20))

	db = openDB(t, dir, Options{Registerer: reg}) // same registry: metrics were unregistered
	require.Equal(t, 1.0, testutil.ToFloat64(db.metrics.corruptions))
	require.Equal(t, 20.0, testutil.ToFloat64(db.metrics.activeSeries))
	app := db.Appender(context.Background())
	for i := 0; i < 25; i++ {
		ref, err := app.Append(0, series(i), 10, 42) // t=10 was lost with the torn record
		require.NoError(t, err)
		if i < 20 {
			require.Equal(t, refs[series(i).String()], ref, "series %d keeps its ref", i)
		} else {
			require.Greater(t, uint64(ref), uint64(20), "new series get new refs")
		}
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.Close())

	after := readLog(t, wal.OS, db.WALDir())
	require.Equal(t, before.samples[:180], after.samples[:180], "everything before the torn record survives")
	require.Len(t, after.samples, 180+25)
	matches, _ := filepath.Glob(filepath.Join(db.WALDir(), "*"+wal.BrokenSuffix))
	require.Len(t, matches, 1, "the cut bytes are kept")
	readUpstream(t, db.WALDir()) // and upstream reads it without error
}

// TestReopenSkipsDamageInOlderSegment: a flipped byte in an older segment
// found at reopen loses the rest of that segment only: later segments stay,
// and everything after the damage reads as before.
func TestReopenSkipsDamageInOlderSegment(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	db := openDB(t, dir, Options{Registerer: reg, SegmentSize: wal.PageSize, Compression: wal.None})
	for c := 0; c < 1000; c++ {
		app := db.Appender(context.Background())
		for i := 0; i < 20; i++ {
			_, err := app.Append(0, series(i), int64(c+1), float64(c*i)*1.37)
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
	}
	require.NoError(t, db.Close())
	segs, err := wal.ListSegments(wal.OS, db.WALDir())
	require.NoError(t, err)
	require.Greater(t, len(segs), 4)
	before := readLog(t, wal.OS, db.WALDir())

	// Flip a byte in the middle of the second segment.
	path := wal.SegmentPath(db.WALDir(), segs[1].Index)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o644))

	db = openDB(t, dir, Options{Registerer: reg, SegmentSize: wal.PageSize, Compression: wal.None})
	require.Equal(t, 1.0, testutil.ToFloat64(db.metrics.corruptions))
	require.NoError(t, db.Close())
	after, err := wal.ListSegments(wal.OS, db.WALDir())
	require.NoError(t, err)
	for _, s := range segs {
		require.FileExists(t, wal.SegmentPath(db.WALDir(), s.Index), "segment %d is kept", s.Index)
	}
	require.Greater(t, after[len(after)-1].Index, segs[len(segs)-1].Index, "writing went on after the newest segment")
	rep, err := inspect.Dir(wal.OS, db.WALDir())
	require.NoError(t, err)
	require.Len(t, rep.Corruptions, 1, "the flipped byte, nothing else")
	require.Equal(t, before.samples[len(before.samples)-1].T, rep.MaxTime, "samples after the damaged segment are still there")
}

// TestReopenPassesOverDamagedCheckpoint: the last segment of a checkpoint,
// which holds the highest refs, damaged in its middle. Open does not fail:
// the series of the damaged records are unknown (counted; the log's later
// samples of them too), the others keep their refs, and a series scraped
// again gets a ref no record of the log names already.
func TestReopenPassesOverDamagedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: smallSegment, Compression: wal.None,
		Acked: func() map[string]record.Position { return map[string]record.Position{"a": {Segment: math.MaxInt}} }}
	db := openDB(t, dir, opts)
	const n = 3000
	app := db.Appender(context.Background())
	for i := 0; i < n; i++ {
		_, err := app.Append(0, series(i), 1, 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.Truncate(0))
	app = db.Appender(context.Background()) // samples of every series after the checkpoint
	for i := 0; i < n; i++ {
		_, err := app.Append(0, series(i), 2, 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.Close())
	cp, err := wal.LastCheckpoint(wal.OS, db.WALDir())
	require.NoError(t, err)
	cpSegs, err := wal.ListSegments(wal.OS, filepath.Join(db.WALDir(), cp.Name))
	require.NoError(t, err)
	// The last of its segments (a page each), holding the highest refs.
	seg := wal.SegmentPath(filepath.Join(db.WALDir(), cp.Name), cpSegs[len(cpSegs)-1].Index)
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	clear(data[len(data)/2 : len(data)/2+100])
	require.NoError(t, os.WriteFile(seg, data, 0o644))

	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	db = openDB(t, dir, opts)
	require.Equal(t, 1.0, testutil.ToFloat64(db.metrics.corruptions))
	known := testutil.ToFloat64(db.metrics.activeSeries)
	require.Less(t, known, float64(n), "the damaged records' series are unknown")
	require.Greater(t, known, float64(n)/2, "the series after the damage are known")
	app = db.Appender(context.Background())
	for i := 0; i < n; i++ {
		_, err := app.Append(0, series(i), 3, 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.Close())

	// Every ref the log's series records name stands for one label set.
	labelsOf := map[record.Ref]string{}
	r, err := wal.OpenReader(wal.OS, filepath.Join(db.WALDir(), cp.Name))
	require.NoError(t, err)
	var dec record.Decoder
	collect := func(r *wal.Reader) {
		for {
			for r.Next() {
				if dec.TypeOf(r.Record()) == record.Series {
					ss, err := dec.Series(r.Record(), nil)
					require.NoError(t, err)
					for _, s := range ss {
						if l, ok := labelsOf[s.Ref]; ok {
							require.Equal(t, l, s.Labels.String(), "ref %d names two series", s.Ref)
						}
						labelsOf[s.Ref] = s.Labels.String()
					}
				}
			}
			if r.Err() == nil || !r.Resync() {
				break
			}
		}
		require.NoError(t, r.Close())
	}
	collect(r)
	r, err = wal.OpenReader(wal.OS, db.WALDir())
	require.NoError(t, err)
	collect(r)
	fresh := 0
	for ref := range labelsOf {
		if ref > n { // the first open handed out refs 1..n
			fresh++
		}
	}
	require.Equal(t, n, len(labelsOf), "each series under one ref")
	require.Equal(t, n-int(known), fresh, "the lost series came back under refs of their own")
}
