package receivers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"

	jsoniter "github.com/json-iterator/go"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/prometheus/prometheus/util/jsonutil"

	"github.com/walship/walship/bench/shape"
)

// The features case: a WAL of native histograms and of float samples
// with exemplars, written with upstream's writer, read back through the
// receiver's remote read (histograms) and exemplar query API.
const (
	featureSeries  = 10
	featureScrapes = 10
	histName       = "walship_e2e_latency_seconds"
	counterName    = "walship_e2e_requests_total"
)

// featureHistogram is series i's histogram at scrape n.
func featureHistogram(i, n int) *histogram.Histogram {
	a, b := uint64(n+1), uint64(i+n+2)
	return &histogram.Histogram{
		Schema: 0, ZeroThreshold: 0.001, ZeroCount: 1,
		Count: 1 + a + b, Sum: float64(i) + float64(n)/4,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
		PositiveBuckets: []int64{int64(a), int64(b) - int64(a)},
	}
}

// writeFeaturesWAL writes the features WAL into dir: featureSeries
// histogram series and as many counters, featureScrapes scrapes from base,
// each counter sample with an exemplar (trace_id).
func writeFeaturesWAL(dir string, base int64) error {
	w, err := wlog.New(nil, nil, dir, compression.Snappy)
	if err != nil {
		return err
	}
	var enc record.Encoder
	var series []record.RefSeries
	for i := range featureSeries {
		series = append(series,
			record.RefSeries{Ref: chunks.HeadSeriesRef(2*i + 1), Labels: labels.FromStrings("__name__", histName, "i", strconv.Itoa(i))},
			record.RefSeries{Ref: chunks.HeadSeriesRef(2*i + 2), Labels: labels.FromStrings("__name__", counterName, "i", strconv.Itoa(i))})
	}
	var meta []record.RefMetadata
	for i := range featureSeries {
		h, c := featureMetadata[histName], featureMetadata[counterName]
		h.Ref, c.Ref = chunks.HeadSeriesRef(2*i+1), chunks.HeadSeriesRef(2*i+2)
		meta = append(meta, h, c)
	}
	if err := w.Log(enc.Series(series, nil), enc.Metadata(meta, nil)); err != nil {
		w.Close()
		return err
	}
	for n := range featureScrapes {
		t := base + int64(n)*shape.Interval
		var hs []record.RefHistogramSample
		var ss []record.RefSample
		var es []record.RefExemplar
		for i := range featureSeries {
			hs = append(hs, record.RefHistogramSample{Ref: chunks.HeadSeriesRef(2*i + 1), T: t, H: featureHistogram(i, n)})
			ss = append(ss, record.RefSample{Ref: chunks.HeadSeriesRef(2*i + 2), T: t, V: float64(n * (i + 1))})
			es = append(es, record.RefExemplar{Ref: chunks.HeadSeriesRef(2*i + 2), T: t, V: float64(n), Labels: labels.FromStrings("trace_id", fmt.Sprintf("t-%d-%d", i, n))})
		}
		hrec, _ := enc.HistogramSamples(hs, nil)
		if err := w.Log(enc.Samples(ss, nil), hrec, enc.Exemplars(es, nil)); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}

// runFeatures ships the features WAL with walship replay (exemplars and
// native histograms on) and reads the histograms and exemplars back.
func runFeatures(ctx context.Context, res *Result, r Receiver, in *instance, walship, dir, conf string, base int64) error {
	walDir := filepath.Join(dir, "wal-features")
	if err := writeFeaturesWAL(walDir, base); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "walship-features.yml")
	conf += "    send_exemplars: true\n    send_native_histograms: true\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	res.Series, res.Samples = 2*featureSeries, 2*featureSeries*featureScrapes
	from, to := base-shape.Interval, base+int64(featureScrapes+1)*shape.Interval
	args := []string{"--config.file=" + cfg, "--wal.dir=" + walDir, "--storage.agent.path=" + filepath.Join(dir, "walship-data-features")}
	// Over RW1 metadata goes in requests of its own, every send_interval
	// and as the queue is flushed: replay's end sends it.
	exit, err := runWalship(ctx, filepath.Join(dir, "walship-features.log"), walship, append([]string{"replay"}, args...)...)
	if err != nil {
		return err
	}
	res.WalshipExit = exit
	got, err := r.read(ctx, in.base, from, to)
	if err != nil {
		return err
	}
	res.GotSeries = len(got)
	var histograms, exemplars int
	if r.VMRange {
		histograms = compareVMRange(res, got, base)
	} else {
		histograms = compareNative(res, got, base)
	}
	res.Missing = max(res.Samples-res.GotSamples, 0)
	res.Note = fmt.Sprintf("%d of %d native histograms read back as written", histograms, featureSeries*featureScrapes)
	if r.VMRange {
		res.Note += " (as _count, _sum and _bucket{vmrange} series)"
	}
	if r.Metadata {
		n, err := readMetadata(ctx, in.base)
		if err != nil {
			return err
		}
		res.Note += fmt.Sprintf("; metadata of %d of %d metric families read back as written (/api/v1/metadata)", n, len(featureMetadata))
		if n != len(featureMetadata) {
			res.Err = fmt.Sprintf("metadata of %d of %d metric families read back", n, len(featureMetadata))
		}
	}
	if r.NoExemplars {
		res.Note += "; exemplars accepted, not kept by this receiver"
		return nil
	}
	if exemplars, err = queryExemplars(ctx, in.base, base, featureScrapes); err != nil {
		return err
	}
	res.Note += fmt.Sprintf(", %d of %d exemplars", exemplars, featureSeries*featureScrapes)
	if exemplars != featureSeries*featureScrapes {
		res.Err = fmt.Sprintf("%d of %d exemplars read back", exemplars, featureSeries*featureScrapes)
	}
	return nil
}

// compareNative counts in res what got holds of the features WAL read
// back as native histograms (from remote read, or as a PromQL API renders
// them) and floats; it returns the histograms that came back as written.
func compareNative(res *Result, got []Series, base int64) int {
	histograms := 0
	for _, s := range got {
		i, _ := strconv.Atoi(s.Labels.Get("i"))
		for _, smp := range s.Samples {
			res.GotSamples++
			n := int((smp.T - base) / shape.Interval)
			switch {
			case s.Labels.Get("__name__") == histName && smp.H != nil:
				if smp.H.Equals(featureHistogram(i, n)) {
					histograms++
				} else {
					res.Wrong++
				}
			case s.Labels.Get("__name__") == histName && smp.J != nil:
				if reflect.DeepEqual(smp.J, apiHistogram(featureHistogram(i, n))) {
					histograms++
				} else {
					res.Wrong++
				}
			case s.Labels.Get("__name__") == counterName && smp.H == nil:
				if smp.V != float64(n*(i+1)) {
					res.Wrong++
				}
			default:
				res.Extra++
			}
		}
	}
	return histograms
}

// compareVMRange is compareNative for a receiver that keeps a native
// histogram as series of its own: _count, _sum, and a _bucket series per
// bucket labelled with its range (vmrange). A histogram counts as read
// back when its count, sum and every bucket did.
func compareVMRange(res *Result, got []Series, base int64) int {
	fields := 0 // of histograms: count, sum, zero bucket, two buckets
	for _, s := range got {
		i, _ := strconv.Atoi(s.Labels.Get("i"))
		name := s.Labels.Get("__name__")
		for _, smp := range s.Samples {
			n := int((smp.T - base) / shape.Interval)
			h := featureHistogram(i, n)
			var want float64
			switch name {
			case counterName:
				res.GotSamples++
				if smp.V != float64(n*(i+1)) {
					res.Wrong++
				}
				continue
			case histName + "_count":
				want = float64(h.Count)
			case histName + "_sum":
				want = h.Sum
			case histName + "_bucket":
				switch s.Labels.Get("vmrange") {
				case "-1.000e-03...1.000e-03":
					want = float64(h.ZeroCount)
				case "5.000e-01...1.000e+00":
					want = float64(h.PositiveBuckets[0])
				case "1.000e+00...2.000e+00":
					want = float64(h.PositiveBuckets[0] + h.PositiveBuckets[1])
				default:
					res.Extra++
					continue
				}
			default:
				res.Extra++
				continue
			}
			if smp.V == want {
				fields++
			} else {
				res.Wrong++
			}
		}
	}
	histograms := fields / 5
	res.GotSamples += histograms
	return histograms
}

// queryExemplars counts the exemplars of counterName the receiver's
// exemplar API returns with the trace_id they were written with.
func queryExemplars(ctx context.Context, base string, from int64, scrapes int) (int, error) {
	q := url.Values{"query": {counterName}, "start": {strconv.FormatInt(from/1000-1, 10)},
		"end": {strconv.FormatInt((from+int64(scrapes+1)*shape.Interval)/1000, 10)}}
	resp, err := get(ctx, base+"/api/v1/query_exemplars?"+q.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels    map[string]string `json:"labels"`
				Value     string            `json:"value"`
				Timestamp float64           `json:"timestamp"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("query_exemplars: %w", err)
	}
	n := 0
	for _, d := range body.Data {
		i := d.SeriesLabels["i"]
		for _, e := range d.Exemplars {
			scrape := int((int64(e.Timestamp*1000) - from) / shape.Interval)
			if e.Labels["trace_id"] == fmt.Sprintf("t-%s-%d", i, scrape) && e.Value == strconv.Itoa(scrape) {
				n++
			}
		}
	}
	return n, nil
}

// apiHistogram is h as the Prometheus query API renders it in JSON
// (count, sum, and every bucket with its boundaries), decoded: rendered
// by upstream's own code.
func apiHistogram(h *histogram.Histogram) any {
	stream := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(stream)
	jsonutil.MarshalHistogram(h.ToFloat(nil), stream)
	var v any
	if err := json.Unmarshal(stream.Buffer(), &v); err != nil {
		panic(err) // upstream's encoder wrote what is not JSON
	}
	return v
}
