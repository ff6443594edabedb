package queue_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
)

// refusalWindow is how long the endpoints of TestRefusalsAreBounded that
// come back refuse before they do.
const refusalWindow = time.Second

// refusingFor answers every request with status and header (a name and a
// value, from value(now)) during refusalWindow from the first request,
// and counts those refusals; after it, requests go on to be accepted.
func refusingFor(status int, header string, value func(time.Time) string, refused *int) func(*testkit.Request) testkit.Reply {
	var first time.Time
	return func(req *testkit.Request) testkit.Reply {
		now := time.Now()
		if req.N == 1 {
			first = now
		}
		if now.Sub(first) >= refusalWindow {
			return testkit.Reply{}
		}
		*refused++
		return testkit.Reply{Status: status, Header: http.Header{header: {value(now)}}}
	}
}

// TestRefusalsAreBounded: an endpoint that refuses in each of the ways a
// sender could answer with a storm gets a bounded number of requests, and
// every sample handed over is accounted for (sent, failed or dropped by
// reason; nothing pending once the queue is done).
//
// The queue sends with one shard (two where the fall-back is tried) and
// backs off from 50 ms to 400 ms. Within a window of refusalWindow, a
// request refused with a retryable status and a Retry-After that asks for
// nothing (0, a date in the past) is retried after the backoff alone:
// after at least 40, 80, 160, 320 and 320 ms (the jitter takes at most a
// fifth off), so at most six requests reach the endpoint in a second.
func TestRefusalsAreBounded(t *testing.T) {
	const retriesInWindow = 6
	zero := func(time.Time) string { return "0" }
	past := func(now time.Time) string { return now.Add(-time.Hour).UTC().Format(http.TimeFormat) }
	type outcome struct {
		requests                 int // the endpoint got this many (0: not checked)
		atMostRefused            int // at most this many were refused (0: not checked)
		sent, failed             int // samples
		refusedFor, refusedCount string
	}
	cases := []struct {
		name     string
		protocol queue.Protocol
		shards   int
		answer   func(refused *int) func(*testkit.Request) testkit.Reply
		rw1Only  bool
		want     outcome
	}{
		{name: "429 with Retry-After: 0", answer: func(refused *int) func(*testkit.Request) testkit.Reply {
			return refusingFor(http.StatusTooManyRequests, "Retry-After", zero, refused)
		}, want: outcome{atMostRefused: retriesInWindow, sent: 300}},
		{name: "429 with a Retry-After date in the past", answer: func(refused *int) func(*testkit.Request) testkit.Reply {
			return refusingFor(http.StatusTooManyRequests, "Retry-After", past, refused)
		}, want: outcome{atMostRefused: retriesInWindow, sent: 300}},
		{name: "503 with Retry-After: 0", answer: func(refused *int) func(*testkit.Request) testkit.Reply {
			return refusingFor(http.StatusServiceUnavailable, "Retry-After", zero, refused)
		}, want: outcome{atMostRefused: retriesInWindow, sent: 300}},
		{
			// Go's client alone would follow ten; each attempt follows
			// three, then the 307 is refused for good.
			name: "307 redirecting to itself", answer: func(refused *int) func(*testkit.Request) testkit.Reply {
				return func(req *testkit.Request) testkit.Reply {
					*refused++
					return testkit.Reply{Status: http.StatusTemporaryRedirect, Header: http.Header{"Location": {req.HTTP.URL.Path}}}
				}
			}, want: outcome{requests: 3 * 4, failed: 300, refusedFor: "307", refusedCount: "3"}},
		{
			// Followed, the POST would become a GET without the data,
			// and the page's 200 would count the batch as delivered.
			name: "302 to a page", answer: func(refused *int) func(*testkit.Request) testkit.Reply {
				return func(req *testkit.Request) testkit.Reply {
					*refused++
					if req.HTTP.Method != http.MethodPost {
						return testkit.Reply{Status: http.StatusOK} // never reached: counted as a request
					}
					return testkit.Reply{Status: http.StatusFound, Header: http.Header{"Location": {"/login"}}}
				}
			}, want: outcome{requests: 3, failed: 300, refusedFor: "302", refusedCount: "3"}},
		{
			name: "2xx saying nothing was written", protocol: queue.RW2, answer: func(refused *int) func(*testkit.Request) testkit.Reply {
				return func(*testkit.Request) testkit.Reply {
					*refused++
					reply := testkit.Reply{Status: http.StatusNoContent, Header: http.Header{}}
					for _, h := range []string{"Samples", "Histograms", "Exemplars"} {
						reply.Header.Set("X-Prometheus-Remote-Write-"+h+"-Written", "0")
					}
					return reply
				}
			}, want: outcome{requests: 3, failed: 300}},
		{name: "415 to RW2, two shards", protocol: queue.RW2, shards: 2, rw1Only: true, want: outcome{sent: 300}},
		{
			name: "2xx without the written-count headers, two shards", protocol: queue.RW2, shards: 2,
			answer: func(_ *int) func(*testkit.Request) testkit.Reply {
				return func(req *testkit.Request) testkit.Reply {
					if req.HTTP.Header.Get("X-Prometheus-Remote-Write-Version") != "2.0.0" {
						return testkit.Reply{} // RW1: taken
					}
					return testkit.Reply{Status: http.StatusNoContent} // as an RW1-only receiver answers anything
				}
			}, want: outcome{sent: 300}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testkit.NewReceiver(t)
			refused := 0
			if tc.answer != nil {
				r.Respond(tc.answer(&refused))
			}
			if tc.rw1Only {
				r.Respond(testkit.RW1Only)
			}
			qc := testQueueConfig()
			qc.MinShards, qc.MaxShards = max(tc.shards, 1), max(tc.shards, 1)
			qc.MaxSamplesPerSend = 100
			qc.MinBackoff, qc.MaxBackoff = model.Duration(50*time.Millisecond), model.Duration(400*time.Millisecond)
			reg := prometheus.NewRegistry()
			m, stop := runManager(t, queue.Options{Name: "test", URL: r.URL, Config: qc, Protocol: tc.protocol,
				Sender: newClient(t, r.URL), Metrics: queue.NewMetrics(reg)})
			feed(t, m, 100, 3) // three batches of 100 (two of 150 with two shards)
			testkit.Eventually(t, func() bool { _, pending := m.LowestPending(); return !pending }, "all finished")
			stop()

			require.Zero(t, requireAccounted(t, m, reg, 300))
			require.Equal(t, float64(tc.want.sent), testkit.Metric(t, reg, "prometheus_remote_storage_samples_total"), "sent")
			require.Equal(t, float64(tc.want.failed), testkit.Metric(t, reg, "prometheus_remote_storage_samples_failed_total"), "failed")
			if tc.want.sent == 300 {
				requireAllInOrder(t, r, 100, 3)
			}
			if tc.want.refusedFor != "" {
				require.Equal(t, tc.want.refusedCount, formatCount(testkit.Metric(t, reg, "walship_remote_storage_requests_refused_total",
					"reason", tc.want.refusedFor)), "requests refused for good")
			}
			vs := versions(r) // taken under the receiver's lock: refused is final
			if tc.want.requests > 0 {
				require.Equal(t, tc.want.requests, len(vs), "requests")
			}
			if tc.want.atMostRefused > 0 {
				require.Positive(t, refused)
				require.LessOrEqual(t, refused, tc.want.atMostRefused, "requests refused in %s", refusalWindow)
			}
			if tc.protocol == queue.RW2 && tc.want.sent == 300 {
				// The fall-back: at most one RW2 request per shard (the one
				// each had on the wire when the first answer came), then RW1
				// for good.
				rw2 := 0
				for _, v := range vs {
					if v == "2.0.0" {
						rw2++
					}
				}
				require.Positive(t, rw2)
				require.LessOrEqual(t, rw2, tc.shards, "RW2 requests: %v", vs)
				require.NotEqual(t, "2.0.0", vs[len(vs)-1])
			}
		})
	}
}

func formatCount(v float64) string { return model.SampleValue(v).String() }
