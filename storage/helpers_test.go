package storage

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	uprecord "github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// logContent is everything a WAL directory holds, decoded by walship's
// reader: the newest checkpoint's series and metadata, then every segment.
type logContent struct {
	checkpointSeries map[record.Ref]labels.Labels
	series           map[record.Ref]labels.Labels // every series record, checkpoint included
	seriesOrder      []record.RefSeries           // series records of segments, in order
	samples          []record.RefSample
	sampleStarts     []record.Position // start of the record holding each sample
	histograms       []record.RefHistogramSample
	floats           []record.RefFloatHistogramSample
	exemplars        []record.RefExemplar
	meta             []record.RefMetadata
	types            []record.Type // record types of segments, in order
}

func readLog(t testing.TB, fsys wal.FS, dir string) logContent {
	t.Helper()
	c := logContent{checkpointSeries: map[record.Ref]labels.Labels{}, series: map[record.Ref]labels.Labels{}}
	var dec record.Decoder
	cp, err := wal.LastCheckpoint(fsys, dir)
	if err == nil {
		r, err := wal.OpenReader(fsys, filepath.Join(dir, cp.Name))
		require.NoError(t, err)
		for r.Next() {
			if dec.TypeOf(r.Record()) == record.Series {
				ss, err := dec.Series(r.Record(), nil)
				require.NoError(t, err)
				for _, s := range ss {
					c.checkpointSeries[s.Ref] = s.Labels
					c.series[s.Ref] = s.Labels
				}
			}
		}
		require.NoError(t, r.Err())
		r.Close()
	} else {
		require.ErrorIs(t, err, wal.ErrNoCheckpoint)
	}
	r, err := wal.OpenReader(fsys, dir)
	require.NoError(t, err)
	defer r.Close()
	prevSeg, prevEnd := -1, int64(0)
	for r.Next() {
		if r.Segment() != prevSeg {
			prevSeg, prevEnd = r.Segment(), 0
		}
		start := record.Position{Segment: r.Segment(), Offset: prevEnd}
		prevEnd = r.Position().Offset
		rec := r.Record()
		typ := dec.TypeOf(rec)
		c.types = append(c.types, typ)
		switch typ {
		case record.Series:
			ss, err := dec.Series(rec, nil)
			require.NoError(t, err)
			for _, s := range ss {
				c.series[s.Ref] = s.Labels
			}
			c.seriesOrder = append(c.seriesOrder, ss...)
		case record.Samples:
			n := len(c.samples)
			c.samples, err = dec.Samples(rec, c.samples)
			require.NoError(t, err)
			for range c.samples[n:] {
				c.sampleStarts = append(c.sampleStarts, start)
			}
		case record.HistogramSamples, record.CustomBucketsHistogramSamples:
			c.histograms, err = dec.HistogramSamples(rec, c.histograms)
			require.NoError(t, err)
		case record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples:
			c.floats, err = dec.FloatHistogramSamples(rec, c.floats)
			require.NoError(t, err)
		case record.Exemplars:
			c.exemplars, err = dec.Exemplars(rec, c.exemplars)
			require.NoError(t, err)
		case record.Metadata:
			c.meta, err = dec.Metadata(rec, c.meta)
			require.NoError(t, err)
		default:
			t.Fatalf("unexpected record type %v", typ)
		}
	}
	require.NoError(t, r.Err())
	return c
}

// upstreamContent is a WAL directory's segments as upstream's reader and
// decoder see them.
type upstreamContent struct {
	series     []uprecord.RefSeries
	samples    []uprecord.RefSample
	histograms []uprecord.RefHistogramSample
	floats     []uprecord.RefFloatHistogramSample
	exemplars  []uprecord.RefExemplar
	meta       []uprecord.RefMetadata
	types      []uprecord.Type
}

func readUpstream(t testing.TB, dir string) upstreamContent {
	t.Helper()
	sr, err := wlog.NewSegmentsReader(dir)
	require.NoError(t, err)
	defer sr.Close()
	r := wlog.NewReader(sr)
	dec := uprecord.NewDecoder(nil, nil)
	var c upstreamContent
	for r.Next() {
		rec := r.Record()
		typ := dec.Type(rec)
		c.types = append(c.types, typ)
		switch typ {
		case uprecord.Series:
			c.series, err = dec.Series(rec, c.series)
		case uprecord.Samples:
			c.samples, err = dec.Samples(rec, c.samples)
		case uprecord.HistogramSamples, uprecord.CustomBucketsHistogramSamples:
			c.histograms, err = dec.HistogramSamples(rec, c.histograms)
		case uprecord.FloatHistogramSamples, uprecord.CustomBucketsFloatHistogramSamples:
			c.floats, err = dec.FloatHistogramSamples(rec, c.floats)
		case uprecord.Exemplars:
			c.exemplars, err = dec.Exemplars(rec, c.exemplars)
		case uprecord.Metadata:
			c.meta, err = dec.Metadata(rec, c.meta)
		default:
			t.Fatalf("unexpected record type %v", typ)
		}
		require.NoError(t, err)
	}
	require.NoError(t, r.Err())
	return c
}

func openDB(t testing.TB, dir string, opts Options) *DB {
	t.Helper()
	db, err := Open(dir, opts)
	require.NoError(t, err)
	return db
}

func closeDB(t testing.TB, db *DB) {
	t.Helper()
	if err := db.Close(); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func series(i int) labels.Labels {
	return labels.FromStrings("__name__", "metric", "i", string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))
}
