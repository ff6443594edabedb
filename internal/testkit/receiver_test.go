package testkit_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

const contentTypeRW2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

// marshaler is a protobuf message of either protocol.
type marshaler interface{ Marshal() ([]byte, error) }

// post sends msg, snappy-compressed, to url and returns the answer.
func post(t *testing.T, url, contentType string, msg marshaler) *http.Response {
	t.Helper()
	raw, err := msg.Marshal()
	require.NoError(t, err)
	return postBody(t, url, contentType, snappy.Encode(nil, raw), time.Minute)
}

// postBody sends body to url with a client that gives up after timeout; the
// answer is nil when there was none.
func postBody(t *testing.T, url, contentType string, body []byte, timeout time.Duration) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	resp.Body.Close()
	return resp
}

func TestReceiverRecordsRW1AndRW2(t *testing.T) {
	r := testkit.NewReceiver(t)
	rw1 := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels:     []prompb.Label{{Name: "job", Value: "a"}, {Name: "__name__", Value: "up"}}, // unsorted: recorded sorted
			Samples:    []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: 0, Timestamp: 2000}},
			Exemplars:  []prompb.Exemplar{{Value: 1, Timestamp: 1000}},
			Histograms: []prompb.Histogram{{Timestamp: 1000}},
		}},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up", Help: "Up."}},
	}
	resp := post(t, r.URL, "application/x-protobuf", rw1)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Empty(t, resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"), "no written counts over RW1")

	rw2 := &writev2.Request{
		Symbols: []string{"", "__name__", "up", "job", "a"},
		Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 2, 3, 4},
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 2000}, {Value: 1, Timestamp: 3000}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE},
		}},
	}
	resp = post(t, r.URL, contentTypeRW2, rw2)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "2", resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"))
	require.Equal(t, "0", resp.Header.Get("X-Prometheus-Remote-Write-Histograms-Written"))

	key := `{__name__="up", job="a"}`
	require.Equal(t, map[string][]prompb.Sample{key: {{Value: 1, Timestamp: 1000}, {Value: 0, Timestamp: 2000}, {Value: 1, Timestamp: 2000}, {Value: 1, Timestamp: 3000}}}, r.Samples())
	unspecified, gauge := writev2.Metadata_METRIC_TYPE_UNSPECIFIED, writev2.Metadata_METRIC_TYPE_GAUGE
	require.Equal(t, map[string][]writev2.Metadata_MetricType{key: {unspecified, unspecified, gauge, gauge}}, r.Types())
	require.Equal(t, map[string]int{key + "@1000": 1, key + "@2000": 2, key + "@3000": 1}, r.Seen())
	require.Equal(t, 3, r.Distinct())
	require.Equal(t, "Up.", r.Metadata()["up"].Help)
	require.Equal(t, testkit.Counts{Requests: 2, Samples: 4, Histograms: 1, Exemplars: 1}, r.Accepted())
	reqs := r.Requests()
	require.Len(t, reqs, 2)
	for i, ex := range reqs {
		require.Equal(t, i+1, ex.N)
		require.Equal(t, http.StatusNoContent, ex.Status)
		require.True(t, ex.Accepted)
		require.False(t, ex.Answered.Before(ex.Arrived))
	}
	require.NotEqual(t, reqs[0].Hash, reqs[1].Hash)

	r.Reset()
	require.Empty(t, r.Samples())
	require.Empty(t, r.Requests())
	require.Zero(t, r.Accepted())
}

func TestReceiverAnswersAsTold(t *testing.T) {
	r := testkit.NewReceiver(t)
	held, arrived := make(chan struct{}), make(chan struct{})
	r.Respond(func(req *testkit.Request) testkit.Reply {
		switch req.N {
		case 1:
			return testkit.Reply{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}}
		case 2:
			return testkit.Reply{HangUp: true}
		case 3:
			return testkit.Reply{Delay: time.Hour} // longer than the client waits
		case 4:
			close(arrived)
			return testkit.Reply{Wait: held, Header: http.Header{"X-Prometheus-Remote-Write-Samples-Written": {"0"}}}
		}
		return testkit.Reply{}
	})
	req := &writev2.Request{Symbols: []string{"", "__name__", "up"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}}}

	resp := post(t, r.URL, contentTypeRW2, req)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Nil(t, post(t, r.URL, contentTypeRW2, req), "hung up")
	raw, err := req.Marshal()
	require.NoError(t, err)
	require.Nil(t, postBody(t, r.URL, contentTypeRW2, snappy.Encode(nil, raw), 50*time.Millisecond), "the client gave up")
	testkit.Eventually(t, func() bool { reqs := r.Requests(); return len(reqs) == 3 && !reqs[2].Answered.IsZero() }, "the abandoned request ends")

	var wg sync.WaitGroup
	wg.Go(func() {
		resp := post(t, r.URL, contentTypeRW2, req)
		if resp == nil || resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written") != "0" {
			t.Errorf("held request: %v", resp)
		}
	})
	<-arrived
	require.Zero(t, r.Accepted().Requests, "nothing taken while held")
	close(held)
	wg.Wait()

	r.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	require.Equal(t, http.StatusServiceUnavailable, post(t, r.URL, contentTypeRW2, req).StatusCode)

	reqs := r.Requests()
	require.Len(t, reqs, 5)
	got := make([]string, len(reqs))
	for i, ex := range reqs {
		got[i] = fmt.Sprintf("%d %v %v", ex.Status, ex.Accepted, ex.Abandoned)
	}
	require.Equal(t, []string{"429 false false", "0 false false", "0 false true", "204 true false", "503 false false"}, got)
	require.Equal(t, 1, r.Accepted().Samples)
	require.Equal(t, 1, r.MostInFlight())
}

// errorsTB is a testing.TB that keeps the errors reported to it.
type errorsTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (e *errorsTB) Errorf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

func TestReceiverReportsWhatDoesNotDecode(t *testing.T) {
	tb := &errorsTB{TB: t}
	r := testkit.NewReceiver(tb)
	badSymbols := &writev2.Request{Symbols: []string{"__name__", "up"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{0, 1}, Samples: []writev2.Sample{{Value: 1}}}}}
	require.Equal(t, http.StatusBadRequest, post(t, r.URL, contentTypeRW2, badSymbols).StatusCode)
	require.Equal(t, http.StatusBadRequest, postBody(t, r.URL, "application/x-protobuf", []byte("not snappy"), time.Minute).StatusCode)
	r.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	require.Equal(t, http.StatusServiceUnavailable, postBody(t, r.URL, "", nil, time.Minute).StatusCode, "refused: not decoded")

	tb.mu.Lock()
	defer tb.mu.Unlock()
	require.Len(t, tb.errs, 2)
	require.Contains(t, tb.errs[0], "symbols do not start with the empty string")
	require.Contains(t, tb.errs[1], "snappy")
	require.Zero(t, r.Accepted())
}
