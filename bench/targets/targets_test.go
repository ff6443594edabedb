package targets

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/walship/walship/bench/shape"
	"github.com/walship/walship/bench/walgen"
)

// TestTargetsServeTheWAL: scraping every target the shape's number of
// times yields exactly the samples of the shape's WAL (the same Sum), and
// a scrape past the last yields nothing.
func TestTargetsServeTheWAL(t *testing.T) {
	s := shape.Shape{Name: "3100x3", Series: 3100, Scrapes: 3} // the last target is partial
	m, err := walgen.Write(t.TempDir(), s)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(s).Handler())
	defer srv.Close()

	scrape := func(target int) shape.Sum {
		resp, err := http.Get(srv.URL + "/metrics/" + strconv.Itoa(target))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("target %d: %v", target, err)
		}
		var sum shape.Sum
		for name, mf := range mfs {
			for _, metric := range mf.GetMetric() {
				b := labels.NewScratchBuilder(len(metric.GetLabel()) + 1)
				b.Add(labels.MetricName, name)
				for _, l := range metric.GetLabel() {
					b.Add(l.GetName(), l.GetValue())
				}
				b.Sort()
				sum.Add(shape.SeriesHash(b.Labels()), metric.GetTimestampMs(), metric.GetUntyped().GetValue())
			}
		}
		return sum
	}
	var got shape.Sum
	for range s.Scrapes {
		for target := range s.Targets() {
			got.Merge(scrape(target))
		}
	}
	if got != m.Sum {
		t.Fatalf("the targets served %+v, the WAL holds %+v", got, m.Sum)
	}
	for target := range s.Targets() {
		if again := scrape(target); again != (shape.Sum{}) {
			t.Fatalf("target %d past its last scrape served %+v, want nothing", target, again)
		}
	}

	// From another base: what shape.SumFrom says.
	const base = 1_800_000_000_000
	resp, err := http.Post(srv.URL+"/reset?base="+strconv.Itoa(base), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got = shape.Sum{}
	for range s.Scrapes {
		for target := range s.Targets() {
			got.Merge(scrape(target))
		}
	}
	if want := s.SumFrom(s.SeriesHashes(), base); got != want {
		t.Fatalf("from base %d the targets served %+v, want %+v", base, got, want)
	}
}
