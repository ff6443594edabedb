package receivers

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// queryRead asks for raw samples (no deduplication, no downsampling, no
// partial answer), reads floats and native histograms, and strips the
// receiver's own labels; a warning fails the read.
func TestQueryRead(t *testing.T) {
	answer := `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"__name__":"m","i":"0","receive_replica":"0","tenant_id":"default-tenant"},"values":[[1700000000.123,"1.5"],[1700000015.123,"NaN"]]},
		{"metric":{"__name__":"h","i":"0","receive_replica":"0","tenant_id":"default-tenant"},
		 "histograms":[[1700000000.5,{"count":"4","sum":"0","buckets":[[3,"-0.001","0.001","1"],[0,"0.5","1","1"],[0,"1","2","2"]]}]]}]}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("query") != `{__name__=~".+"}[30000ms]` || q.Get("time") != "1700000030.123" || q.Get("dedup") != "false" ||
			q.Get("partial_response") != "false" || q.Get("max_source_resolution") != "0s" {
			http.Error(w, "unexpected query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	got, err := queryRead(thanosLabels...)(t.Context(), srv.URL, 1700000000123, 1700000030123)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !labels.Equal(got[0].Labels, labels.FromStrings("__name__", "m", "i", "0")) ||
		!labels.Equal(got[1].Labels, labels.FromStrings("__name__", "h", "i", "0")) {
		t.Fatalf("series %v", got)
	}
	if s := got[0].Samples; len(s) != 2 || s[0].T != 1700000000123 || s[0].V != 1.5 || s[1].T != 1700000015123 || s[1].V == s[1].V {
		t.Fatalf("floats %+v", s)
	}
	// featureHistogram(0, 0): zero bucket 1, (0.5, 1] 1, (1, 2] 2.
	if h := got[1].Samples; len(h) != 1 || h[0].T != 1700000000500 || !reflect.DeepEqual(h[0].J, apiHistogram(featureHistogram(0, 0))) {
		t.Fatalf("histogram %+v, want %v", h, apiHistogram(featureHistogram(0, 0)))
	}

	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(strings.Replace(answer, `"status":"success",`, `"status":"success","warnings":["No StoreAPIs matched for this query"],`, 1)))
	})
	if _, err := queryRead()(t.Context(), srv.URL, 0, 1000); err == nil || !strings.Contains(err.Error(), "No StoreAPIs") {
		t.Fatalf("a warning read as %v", err)
	}
}
