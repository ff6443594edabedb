package demo

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

const (
	ctRW1 = "application/x-protobuf"
	ctRW2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
)

// rw1Request has 3 series: 5 samples, 2 histograms, 3 exemplars.
func rw1Request(t *testing.T) []byte {
	t.Helper()
	req := prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:    []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}},
				Samples:   []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: 1, Timestamp: 2000}, {Value: 0, Timestamp: 3000}},
				Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "x"}}, Value: 1, Timestamp: 1000}},
			},
			{
				Labels:     []prompb.Label{{Name: "__name__", Value: "latency"}},
				Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Schema: 0, Timestamp: 1000}, {Count: &prompb.Histogram_CountFloat{CountFloat: 2}, Timestamp: 2000}},
				Exemplars:  []prompb.Exemplar{{Value: 0.3, Timestamp: 1000}, {Value: 0.4, Timestamp: 2000}},
			},
			{
				Labels:  []prompb.Label{{Name: "__name__", Value: "requests_total"}},
				Samples: []prompb.Sample{{Value: 10, Timestamp: 1000}, {Value: 12, Timestamp: 2000}},
			},
		},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "requests_total", Help: "Requests."}},
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// rw2Request has 2 series: 4 samples, 1 histogram, 2 exemplars.
func rw2Request(t *testing.T) []byte { return snappy.Encode(nil, rw2Protobuf(t)) }

// rw2Protobuf is rw2Request before snappy.
func rw2Protobuf(t *testing.T) []byte {
	t.Helper()
	req := writev2.Request{
		Symbols: []string{"", "__name__", "up", "job", "a", "trace_id", "x", "latency", "Help text.", "seconds"},
		Timeseries: []writev2.TimeSeries{
			{
				LabelsRefs: []uint32{1, 2, 3, 4},
				Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 1, Timestamp: 2000}, {Value: 1, Timestamp: 3000}},
				Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{5, 6}, Value: 1, Timestamp: 1000}, {Value: 1, Timestamp: 2000}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 8},
			},
			{
				LabelsRefs: []uint32{1, 7},
				Samples:    []writev2.Sample{{Value: 2, Timestamp: 1000}},
				Histograms: []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 1}, Timestamp: 1000}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, UnitRef: 9},
			},
		},
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	return b
}

func serve(r *Receiver, method, contentType, encoding string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/api/v1/write", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec
}

func TestReceiverRW1(t *testing.T) {
	var r Receiver
	body := rw1Request(t)
	rec := serve(&r, http.MethodPost, ctRW1, "snappy", body)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Empty(t, rec.Header().Get(headerSamplesWritten), "no RW2 headers for RW1")
	require.Equal(t, ReceiverStats{
		Requests: 1, Bytes: uint64(len(body)),
		Series: 3, Samples: 5, Histograms: 2, Exemplars: 3,
	}, r.Stats())

	// The same with the explicit proto parameter, and with no headers at all.
	require.Equal(t, http.StatusNoContent, serve(&r, http.MethodPost, "application/x-protobuf; proto=prometheus.WriteRequest", "snappy", body).Code)
	require.Equal(t, http.StatusNoContent, serve(&r, http.MethodPost, "", "", body).Code)
	require.Equal(t, ReceiverStats{
		Requests: 3, Bytes: 3 * uint64(len(body)),
		Series: 9, Samples: 15, Histograms: 6, Exemplars: 9,
	}, r.Stats())
}

func TestReceiverRW2(t *testing.T) {
	var r Receiver
	body := rw2Request(t)
	rec := serve(&r, http.MethodPost, ctRW2, "snappy", body)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Equal(t, "4", rec.Header().Get("X-Prometheus-Remote-Write-Samples-Written"))
	require.Equal(t, "1", rec.Header().Get("X-Prometheus-Remote-Write-Histograms-Written"))
	require.Equal(t, "2", rec.Header().Get("X-Prometheus-Remote-Write-Exemplars-Written"))
	require.Equal(t, ReceiverStats{
		Requests: 1, Bytes: uint64(len(body)),
		Series: 2, Samples: 4, Histograms: 1, Exemplars: 2,
	}, r.Stats())
}

// TestReceiverReusesBuffers sends a large request, then smaller ones of
// both kinds: pooled messages must not carry anything over.
func TestReceiverReusesBuffers(t *testing.T) {
	var r Receiver
	big := prompb.WriteRequest{}
	for i := range 1000 {
		big.Timeseries = append(big.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "m" + strconv.Itoa(i)}},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: int64(i)}, {Value: 1, Timestamp: int64(i + 1)}},
		})
	}
	b, err := big.Marshal()
	require.NoError(t, err)
	bigBody := snappy.Encode(nil, b)

	var want ReceiverStats
	for range 3 {
		require.Equal(t, http.StatusNoContent, serve(&r, http.MethodPost, ctRW1, "snappy", bigBody).Code)
		require.Equal(t, http.StatusNoContent, serve(&r, http.MethodPost, ctRW1, "snappy", rw1Request(t)).Code)
		require.Equal(t, http.StatusNoContent, serve(&r, http.MethodPost, ctRW2, "snappy", rw2Request(t)).Code)
		want.Requests += 3
		want.Bytes += uint64(len(bigBody) + len(rw1Request(t)) + len(rw2Request(t)))
		want.Series += 1000 + 3 + 2
		want.Samples += 2000 + 5 + 4
		want.Histograms += 2 + 1
		want.Exemplars += 3 + 2
	}
	require.Equal(t, want, r.Stats())
}

func TestReceiverRejects(t *testing.T) {
	badRef := writev2.Request{
		Symbols:    []string{"", "__name__"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1}}}},
	}
	badRefBody, err := badRef.Marshal()
	require.NoError(t, err)
	oddRefs := writev2.Request{
		Symbols:    []string{"", "__name__", "up"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 1}, Samples: []writev2.Sample{{Value: 1}}}},
	}
	oddRefsBody, err := oddRefs.Marshal()
	require.NoError(t, err)
	badHelp := writev2.Request{
		Symbols:    []string{"", "__name__", "up"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Metadata: writev2.Metadata{HelpRef: 3}}},
	}
	badHelpBody, err := badHelp.Marshal()
	require.NoError(t, err)

	for _, tc := range []struct {
		name, method, contentType, encoding string
		body                                []byte
		want                                int
	}{
		{"not snappy", http.MethodPost, ctRW1, "snappy", []byte("not snappy at all"), http.StatusBadRequest},
		{"empty body", http.MethodPost, ctRW1, "snappy", nil, http.StatusBadRequest},
		{"not protobuf RW1", http.MethodPost, ctRW1, "snappy", snappy.Encode(nil, []byte{0xff, 0xff, 0xff}), http.StatusBadRequest},
		{"not protobuf RW2", http.MethodPost, ctRW2, "snappy", snappy.Encode(nil, []byte{0x0f, 0x01}), http.StatusBadRequest},
		{"truncated RW2", http.MethodPost, ctRW2, "snappy", snappy.Encode(nil, rw2Protobuf(t)[:20]), http.StatusBadRequest},
		{"RW2 symbol out of range", http.MethodPost, ctRW2, "snappy", snappy.Encode(nil, badRefBody), http.StatusBadRequest},
		{"RW2 odd label refs", http.MethodPost, ctRW2, "snappy", snappy.Encode(nil, oddRefsBody), http.StatusBadRequest},
		{"RW2 help out of range", http.MethodPost, ctRW2, "snappy", snappy.Encode(nil, badHelpBody), http.StatusBadRequest},
		{"wrong content type", http.MethodPost, "text/plain", "snappy", rw1Request(t), http.StatusUnsupportedMediaType},
		{"unknown proto", http.MethodPost, "application/x-protobuf;proto=io.prometheus.write.v3.Request", "snappy", rw2Request(t), http.StatusUnsupportedMediaType},
		{"bad content type", http.MethodPost, "application/x-protobuf;;;", "snappy", rw1Request(t), http.StatusUnsupportedMediaType},
		{"gzip", http.MethodPost, ctRW1, "gzip", rw1Request(t), http.StatusUnsupportedMediaType},
		{"GET", http.MethodGet, ctRW1, "snappy", nil, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Receiver
			rec := serve(&r, tc.method, tc.contentType, tc.encoding, tc.body)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			require.Equal(t, ReceiverStats{Rejected: 1}, r.Stats())
		})
	}
}

func TestReceiverTooLarge(t *testing.T) {
	var r Receiver
	rec := serve(&r, http.MethodPost, ctRW1, "snappy", make([]byte, maxBodyBytes+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	require.Equal(t, ReceiverStats{Rejected: 1}, r.Stats())
}

// TestReceiverServe runs the receiver on loopback and posts to it from
// several goroutines while reading Stats.
func TestReceiverServe(t *testing.T) {
	var r Receiver
	url, err := r.Start(t.Context(), "")
	require.NoError(t, err)
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/api/v1/write$`, url)
	_, err = r.Start(t.Context(), "")
	require.Error(t, err, "second Start")

	rw1, rw2 := rw1Request(t), rw2Request(t)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			body, ct := rw1, ctRW1
			if w%2 == 1 {
				body, ct = rw2, ctRW2
			}
			for range each {
				req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Content-Type", ct)
				req.Header.Set("Content-Encoding", "snappy")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errs <- &statusError{resp.StatusCode}
					return
				}
				_ = r.Stats() // concurrent reads are fine
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	http.DefaultClient.CloseIdleConnections()
	require.NoError(t, r.Close())
	require.NoError(t, r.Close(), "second Close")

	n := uint64(workers / 2 * each)
	require.Equal(t, ReceiverStats{
		Requests:   2 * n,
		Bytes:      n * uint64(len(rw1)+len(rw2)),
		Series:     n * (3 + 2),
		Samples:    n * (5 + 4),
		Histograms: n * (2 + 1),
		Exemplars:  n * (3 + 2),
	}, r.Stats())
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "status " + strconv.Itoa(e.code) }

func TestReceiverStopsWithContext(t *testing.T) {
	var r Receiver
	ctx, cancel := context.WithCancel(t.Context())
	url, err := r.Start(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	cancel()
	require.NoError(t, r.Close())
	_, err = http.Post(url, ctRW1, bytes.NewReader(rw1Request(t)))
	require.Error(t, err, "server should be gone")
}

func TestReceiverCloseWithoutStart(t *testing.T) {
	var r Receiver
	require.NoError(t, r.Close())
}

func TestReceiverListenError(t *testing.T) {
	var r Receiver
	_, err := r.Start(t.Context(), "127.0.0.1:-1")
	require.Error(t, err)
}
