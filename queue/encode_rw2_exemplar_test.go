package queue

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// TestRW2SampleWithExemplars: the sample and its exemplars share one series
// entry, and the bytes are what gogo's marshalling of that message gives.
func TestRW2SampleWithExemplars(t *testing.T) {
	tab := newTestTable()
	in := tab.strings
	_ = in
	s := internSeries(tab, labels.FromStrings("__name__", "requests_total", "job", "api"))
	e := newRW2Encoder(tab)
	e.AddSampleWithExemplars(s, 1000, 7, 0, []rw2Exemplar{
		{Labels: labels.FromStrings("trace_id", "a"), T: 999, V: 1},
		{Labels: labels.FromStrings("trace_id", "b"), T: 1000, V: 2},
	})
	e.AddSample(s, 2000, 8, 0)
	got := e.Bytes()

	var req writev2.Request
	require.NoError(t, req.Unmarshal(got))
	require.Len(t, req.Timeseries, 2)
	ts := req.Timeseries[0]
	require.Equal(t, []writev2.Sample{{Value: 7, Timestamp: 1000}}, ts.Samples)
	require.Len(t, ts.Exemplars, 2)
	for i, want := range []string{"a", "b"} {
		x := ts.Exemplars[i]
		require.Equal(t, []string{"trace_id", want}, []string{req.Symbols[x.LabelsRefs[0]], req.Symbols[x.LabelsRefs[1]]})
	}
	require.Equal(t, float64(2), ts.Exemplars[1].Value)
	require.Empty(t, req.Timeseries[1].Exemplars)

	again, err := req.Marshal()
	require.NoError(t, err)
	require.Equal(t, again, got, "byte-identical to gogo's marshalling")
	samples, _, exemplars := e.Counts()
	require.Equal(t, 2, samples)
	require.Equal(t, 2, exemplars)
}
