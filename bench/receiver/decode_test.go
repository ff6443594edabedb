package receiver

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/walship/walship/bench/shape"
)

// The decoder gives the Sum the generator computes, for requests
// marshalled by gogo (upstream's sender), in both protocols.
func TestDecodeMatchesGeneratorSum(t *testing.T) {
	var sb labels.ScratchBuilder
	var want shape.Sum
	var rw1 prompb.WriteRequest
	st := writev2.NewSymbolTable()
	var rw2 writev2.Request
	for i := range 300 {
		ls := shape.Labels(&sb, i)
		ts, v := shape.Timestamp(i/100, 3), shape.Value(i, 3)
		want.Add(shape.SeriesHash(ls), ts, v)
		rw1.Timeseries = append(rw1.Timeseries, prompb.TimeSeries{
			Labels:  prompb.FromLabels(ls, nil),
			Samples: []prompb.Sample{{Value: v, Timestamp: ts}},
		})
		rw2.Timeseries = append(rw2.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: v, Timestamp: ts}},
		})
	}
	rw2.Symbols = st.Symbols()
	b1, err := rw1.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := rw2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var d decoder
	c1, err := d.rw1(b1)
	if err != nil || c1.sum != want {
		t.Fatalf("RW1: %+v, %v; want %+v", c1.sum, err, want)
	}
	c2, err := d.rw2(b2)
	if err != nil || c2.sum != want {
		t.Fatalf("RW2: %+v, %v; want %+v", c2.sum, err, want)
	}
	if _, err := d.rw2(b2[:len(b2)-3]); err == nil {
		t.Fatal("a truncated request decoded")
	}
}
