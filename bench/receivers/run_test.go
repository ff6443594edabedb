package receivers

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// compare counts what is missing, extra and different, series by series.
func TestCompare(t *testing.T) {
	a, b := labels.FromStrings("__name__", "m", "i", "1"), labels.FromStrings("__name__", "m", "i", "2")
	want := map[string]map[int64]float64{
		a.String(): {1: 1, 2: 2},
		b.String(): {1: 5},
	}
	got := []Series{
		{Labels: a, Samples: []Sample{{T: 1, V: 1}, {T: 1, V: 1}, {T: 2, V: 2.5}, {T: 3, V: 3}}},
		{Labels: labels.FromStrings("__name__", "other"), Samples: []Sample{{T: 1, V: 1}}},
	}
	var r Result
	compare(&r, want, got, true)
	if r.Missing != 1 || r.Extra != 2 || r.Wrong != 1 || r.Duplicates != 1 || r.GotSamples != 5 || r.GotSeries != 2 {
		t.Fatalf("got %+v", r)
	}
	x, y := 0.1, 0.2 // variables: constant arithmetic would be exact
	if !same(x+y, 0.3, false) || same(x+y, 0.3, true) || same(1, 1.001, false) {
		t.Fatal("same")
	}
}
