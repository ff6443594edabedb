package queue

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal/record"
)

// TestRW2Metadata: metadata from the WAL reaches RW2 requests with the
// series' samples, and samples queued before it keep what they had.
func TestRW2Metadata(t *testing.T) {
	tab := newTestTable()
	c := newSeriesCache(labels.EmptyLabels(), nil, tab, true)
	c.store([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "http_requests_total")}}, 0)
	before := c.get(1).data
	c.setMetadata([]record.RefMetadata{{Ref: 1, Type: record.Counter, Help: "Requests served.", Unit: "requests"}})
	after := c.get(1).data
	require.NotSame(t, before, after, "the encoding is replaced, not changed")
	_, _, _, ok := before.set.metadata()
	require.False(t, ok)

	e := newRW2Encoder(tab)
	e.AddSample(after, 1000, 1, 0)
	var req writev2.Request
	require.NoError(t, req.Unmarshal(e.Bytes()))
	require.Len(t, req.Timeseries, 1)
	md := req.Timeseries[0].Metadata
	require.Equal(t, writev2.Metadata_METRIC_TYPE_COUNTER, md.Type)
	require.Equal(t, "Requests served.", req.Symbols[md.HelpRef])
	require.Equal(t, "requests", req.Symbols[md.UnitRef])

	// Unknown refs and RW1 caches ignore metadata.
	c.setMetadata([]record.RefMetadata{{Ref: 99, Type: record.Gauge}})
	rw1 := newSeriesCache(labels.EmptyLabels(), nil, newTestTable(), false)
	rw1.store([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "x")}}, 0)
	d := rw1.get(1).data
	rw1.setMetadata([]record.RefMetadata{{Ref: 1, Type: record.Gauge}})
	require.Same(t, d, rw1.get(1).data)
}
