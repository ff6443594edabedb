package remote

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage/remote/azuread"
	"github.com/prometheus/prometheus/storage/remote/googleiam"
	"github.com/prometheus/sigv4"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/queue"
)

// testConfig returns the default remote_write entry for url, as a config
// file with only `url:` would give it.
func testConfig(t *testing.T, rawURL string) *config.RemoteWriteConfig {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	cfg := config.DefaultRemoteWriteConfig
	cfg.URL = &commoncfg.URL{URL: u}
	return &cfg
}

func newTestClient(t *testing.T, cfg *config.RemoteWriteConfig, opts ClientOptions) *Client {
	t.Helper()
	c, err := NewClient("test", cfg, opts)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// captured is what a test server saw of one request.
type captured struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// recordingServer answers every request with respond after recording it.
type recordingServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func newRecordingServer(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *recordingServer {
	t.Helper()
	s := &recordingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, captured{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		if respond != nil {
			respond(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recordingServer) requests() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]captured(nil), s.reqs...)
}

func (s *recordingServer) last(t *testing.T) captured {
	t.Helper()
	reqs := s.requests()
	require.NotEmpty(t, reqs)
	return reqs[len(reqs)-1]
}

func writtenHeaders(samples, histograms, exemplars int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(headerSamplesWritten, strconv.Itoa(samples))
		w.Header().Set(headerHistogramsWritten, strconv.Itoa(histograms))
		w.Header().Set(headerExemplarsWritten, strconv.Itoa(exemplars))
		w.WriteHeader(http.StatusNoContent)
	}
}

func asSendError(t *testing.T, err error) *queue.SendError {
	t.Helper()
	require.Error(t, err)
	var se *queue.SendError
	require.True(t, errors.As(err, &se), "error %T %v is not a *queue.SendError", err, err)
	return se
}

func TestClientHeaders(t *testing.T) {
	body := []byte("not really snappy, the client must not care")
	for _, tc := range []struct {
		proto       queue.Protocol
		contentType string
		version     string
	}{
		{queue.RW1, "application/x-protobuf", "0.1.0"},
		{queue.RW2, "application/x-protobuf;proto=io.prometheus.write.v2.Request", "2.0.0"},
	} {
		t.Run(tc.proto.String(), func(t *testing.T) {
			srv := newRecordingServer(t, writtenHeaders(1, 0, 0))
			cfg := testConfig(t, srv.URL+"/api/v1/write")
			cfg.Headers = map[string]string{"X-Scope-OrgID": "tenant-1", "X-Custom": "yes"}
			c := newTestClient(t, cfg, ClientOptions{})

			req := &queue.Request{Protocol: tc.proto, Body: body, Samples: 1}
			w, err := c.Send(context.Background(), req, 0)
			require.NoError(t, err)
			require.Equal(t, queue.Written{Known: true, Samples: 1}, w)

			got := srv.last(t)
			require.Equal(t, http.MethodPost, got.method)
			require.Equal(t, "/api/v1/write", got.path)
			require.Equal(t, body, got.body)
			require.Equal(t, "snappy", got.header.Get("Content-Encoding"))
			require.Equal(t, tc.contentType, got.header.Get("Content-Type"))
			require.Equal(t, tc.version, got.header.Get("X-Prometheus-Remote-Write-Version"))
			require.Equal(t, DefaultUserAgent(), got.header.Get("User-Agent"))
			require.True(t, strings.HasPrefix(got.header.Get("User-Agent"), "walship/"))
			require.Equal(t, "tenant-1", got.header.Get("X-Scope-OrgID"))
			require.Equal(t, "yes", got.header.Get("X-Custom"))
			require.Empty(t, got.header.Values("Retry-Attempt"), "first attempt must not carry Retry-Attempt")
			require.Equal(t, strconv.Itoa(len(body)), got.header.Get("Content-Length"))
		})
	}
}

func TestClientRetryAttemptHeader(t *testing.T) {
	srv := newRecordingServer(t, nil)
	c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{UserAgent: "custom-agent/1.2"})
	req := &queue.Request{Protocol: queue.RW1, Body: []byte("x")}
	for attempt := range 4 {
		_, err := c.Send(context.Background(), req, attempt)
		require.NoError(t, err)
	}
	reqs := srv.requests()
	require.Len(t, reqs, 4)
	require.Empty(t, reqs[0].header.Values("Retry-Attempt"))
	for i := 1; i < 4; i++ {
		require.Equal(t, []string{strconv.Itoa(i)}, reqs[i].header.Values("Retry-Attempt"))
	}
	for _, r := range reqs {
		require.Equal(t, "custom-agent/1.2", r.header.Get("User-Agent"))
	}
}

func TestClientProtocolHeadersWinOverUserHeaders(t *testing.T) {
	// Config validation rejects these names; a config built in code still
	// must not be able to break the protocol.
	srv := newRecordingServer(t, nil)
	cfg := testConfig(t, srv.URL)
	cfg.Headers = map[string]string{"Content-Type": "text/plain", "X-Prometheus-Remote-Write-Version": "9"}
	c := newTestClient(t, cfg, ClientOptions{})
	_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
	require.NoError(t, err)
	got := srv.last(t)
	require.Equal(t, "application/x-protobuf", got.header.Get("Content-Type"))
	require.Equal(t, "0.1.0", got.header.Get("X-Prometheus-Remote-Write-Version"))
}

func TestClientAuth(t *testing.T) {
	t.Run("basic auth", func(t *testing.T) {
		srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		})
		cfg := testConfig(t, srv.URL)
		cfg.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: "alice", Password: "s3cret"}
		c := newTestClient(t, cfg, ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
		require.NoError(t, err)

		// Wrong password: a 401, not retryable.
		cfg.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: "alice", Password: "wrong"}
		c = newTestClient(t, cfg, ClientOptions{})
		_, err = c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
		se := asSendError(t, err)
		require.Equal(t, http.StatusUnauthorized, se.Status)
		require.False(t, se.Retryable)
	})
	t.Run("bearer token", func(t *testing.T) {
		srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer tok-123" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		})
		cfg := testConfig(t, srv.URL)
		cfg.HTTPClientConfig.Authorization = &commoncfg.Authorization{Type: "Bearer", Credentials: "tok-123"}
		c := newTestClient(t, cfg, ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW2, Body: []byte("x")}, 0)
		require.NoError(t, err)
		require.Equal(t, "Bearer tok-123", srv.last(t).header.Get("Authorization"))
	})
	t.Run("tls with configured CA", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the expected handshake failure
		srv.StartTLS()
		defer srv.Close()
		caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

		// Without the CA the handshake fails: a network error, retryable.
		cfg := testConfig(t, srv.URL)
		c := newTestClient(t, cfg, ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
		se := asSendError(t, err)
		require.Equal(t, 0, se.Status)
		require.True(t, se.Retryable)

		cfg.HTTPClientConfig.TLSConfig = commoncfg.TLSConfig{CA: string(caPEM)}
		c = newTestClient(t, cfg, ClientOptions{})
		_, err = c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
		require.NoError(t, err)
	})
}

func TestClientStatusMatrix(t *testing.T) {
	type want struct {
		ok          bool
		retryable   bool
		unsupported bool
		// retryAfter is the expected RetryAfter, within retryAfterSlack.
		retryAfter time.Duration
	}
	const retryAfterSlack = 2 * time.Second
	future := func(d time.Duration) func() string {
		return func() string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	}
	fixed := func(s string) func() string { return func() string { return s } }

	for _, tc := range []struct {
		status     int
		retryAfter func() string
		rw1, rw2   want
	}{
		{status: 200, rw1: want{ok: true}, rw2: want{ok: true}},
		{status: 202, rw1: want{ok: true}, rw2: want{ok: true}},
		{status: 204, rw1: want{ok: true}, rw2: want{ok: true}},
		{status: 400},
		{status: 401},
		{status: 403},
		{status: 404},
		{status: 409},
		{status: 413},
		{status: 415, rw2: want{unsupported: true}},
		{status: 422},
		{status: 429, rw1: want{retryable: true}, rw2: want{retryable: true}},
		{status: 429, retryAfter: fixed("7"), rw1: want{retryable: true, retryAfter: 7 * time.Second}, rw2: want{retryable: true, retryAfter: 7 * time.Second}},
		{status: 429, retryAfter: future(30 * time.Second), rw1: want{retryable: true, retryAfter: 30 * time.Second}, rw2: want{retryable: true, retryAfter: 30 * time.Second}},
		{status: 429, retryAfter: fixed("garbage"), rw1: want{retryable: true}, rw2: want{retryable: true}},
		{status: 429, retryAfter: future(-time.Hour), rw1: want{retryable: true}, rw2: want{retryable: true}},
		{status: 500, rw1: want{retryable: true}, rw2: want{retryable: true}},
		{status: 500, retryAfter: fixed("3"), rw1: want{retryable: true, retryAfter: 3 * time.Second}, rw2: want{retryable: true, retryAfter: 3 * time.Second}},
		{status: 502, rw1: want{retryable: true}, rw2: want{retryable: true}},
		{status: 503, retryAfter: future(20 * time.Second), rw1: want{retryable: true, retryAfter: 20 * time.Second}, rw2: want{retryable: true, retryAfter: 20 * time.Second}},
		{status: 504, rw1: want{retryable: true}, rw2: want{retryable: true}},
		{status: 529, rw1: want{retryable: true}, rw2: want{retryable: true}},
		{status: 599, rw1: want{retryable: true}, rw2: want{retryable: true}},
		{status: 600, retryAfter: fixed("5")},
		{status: 999},
		{status: 304},
	} {
		for _, proto := range []queue.Protocol{queue.RW1, queue.RW2} {
			w := tc.rw1
			if proto == queue.RW2 {
				w = tc.rw2
			}
			ra := ""
			if tc.retryAfter != nil {
				ra = tc.retryAfter()
			}
			name := fmt.Sprintf("%d/%s/retry-after=%q", tc.status, proto, ra)
			t.Run(name, func(t *testing.T) {
				srv := newRecordingServer(t, func(rw http.ResponseWriter, _ *http.Request) {
					if ra != "" {
						rw.Header().Set("Retry-After", ra)
					}
					if tc.status/100 == 2 {
						// Written headers so that the RW2 check passes.
						rw.Header().Set(headerSamplesWritten, "1")
					}
					rw.WriteHeader(tc.status)
					if tc.status != 204 && tc.status != 304 {
						_, _ = io.WriteString(rw, "body of "+strconv.Itoa(tc.status))
					}
				})
				c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
				written, err := c.Send(context.Background(), &queue.Request{Protocol: proto, Body: []byte("x"), Samples: 1}, 0)
				if w.ok {
					require.NoError(t, err)
					require.Equal(t, queue.Written{Known: true, Samples: 1}, written)
					return
				}
				se := asSendError(t, err)
				require.Equal(t, tc.status, se.Status)
				require.Equal(t, w.retryable, se.Retryable)
				require.Equal(t, w.unsupported, errors.Is(err, queue.ErrUnsupportedProtocol))
				require.InDelta(t, w.retryAfter, se.RetryAfter, float64(retryAfterSlack))
				if !w.retryable {
					require.Zero(t, se.RetryAfter, "no Retry-After for a request that is not retried")
				}
				if tc.status != 304 {
					require.Contains(t, err.Error(), "body of "+strconv.Itoa(tc.status))
				}
				require.Contains(t, err.Error(), strconv.Itoa(tc.status))
			})
		}
	}
}

func TestClientRedirects(t *testing.T) {
	newServer := func(t *testing.T, status int) *recordingServer {
		var srv *recordingServer
		srv = newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/write" {
				http.Redirect(w, r, srv.URL+"/moved", status)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
		return srv
	}
	t.Run("302 not followed: it would resend the data as a GET", func(t *testing.T) {
		srv := newServer(t, http.StatusFound)
		c := newTestClient(t, testConfig(t, srv.URL+"/write"), ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("payload")}, 0)
		se := asSendError(t, err)
		require.Equal(t, http.StatusFound, se.Status)
		require.False(t, se.Retryable)
		require.ErrorContains(t, err, srv.URL+"/moved", "the error names where it was sent")
		require.Len(t, srv.requests(), 1, "no GET to the new location")
	})
	t.Run("307 loop followed three times", func(t *testing.T) {
		var srv *recordingServer
		srv = newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, srv.URL+"/write", http.StatusTemporaryRedirect)
		})
		c := newTestClient(t, testConfig(t, srv.URL+"/write"), ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("payload")}, 0)
		se := asSendError(t, err)
		require.Equal(t, http.StatusTemporaryRedirect, se.Status)
		require.False(t, se.Retryable, "refused, not retried as a network error")
		require.Len(t, srv.requests(), 4, "the request and three redirects (Go alone follows ten)")
	})
	t.Run("307 followed with the body", func(t *testing.T) {
		srv := newServer(t, http.StatusTemporaryRedirect)
		c := newTestClient(t, testConfig(t, srv.URL+"/write"), ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("payload")}, 0)
		require.NoError(t, err)
		got := srv.last(t)
		require.Equal(t, "/moved", got.path)
		require.Equal(t, http.MethodPost, got.method)
		require.Equal(t, []byte("payload"), got.body)
		require.Equal(t, "snappy", got.header.Get("Content-Encoding"))
	})
	t.Run("302 not followed when disabled", func(t *testing.T) {
		srv := newServer(t, http.StatusFound)
		cfg := testConfig(t, srv.URL+"/write")
		cfg.HTTPClientConfig.FollowRedirects = false
		c := newTestClient(t, cfg, ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("payload")}, 0)
		se := asSendError(t, err)
		require.Equal(t, http.StatusFound, se.Status)
		require.False(t, se.Retryable)
		require.Len(t, srv.requests(), 1)
	})
}

func TestClientTimeout(t *testing.T) {
	handlerDone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		// The server notices the client going away only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done(): // the client gave up and closed the connection
		case <-time.After(10 * time.Second):
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()

	cfg := testConfig(t, srv.URL)
	cfg.RemoteTimeout = model.Duration(100 * time.Millisecond)
	c := newTestClient(t, cfg, ClientOptions{})

	start := time.Now()
	_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
	elapsed := time.Since(start)
	se := asSendError(t, err)
	require.Equal(t, 0, se.Status)
	require.True(t, se.Retryable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "remote_timeout")
	require.GreaterOrEqual(t, elapsed, 100*time.Millisecond)
	require.Less(t, elapsed, 2*time.Second)

	select {
	case <-handlerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("slow handler did not end when the client gave up")
	}
}

func TestClientCanceledContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Send(ctx, &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
	se := asSendError(t, err)
	require.Equal(t, 0, se.Status)
	require.ErrorIs(t, err, context.Canceled)
}

func TestClientNetworkErrors(t *testing.T) {
	t.Run("connection hijacked and closed", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}))
		defer srv.Close()
		c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
		se := asSendError(t, err)
		require.Equal(t, 0, se.Status)
		require.True(t, se.Retryable)
		require.Zero(t, se.RetryAfter)
	})
	t.Run("garbage response", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_, _ = buf.WriteString("this is not HTTP\r\n\r\n")
				_ = buf.Flush()
				_ = conn.Close()
			}
		}))
		defer srv.Close()
		c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
		se := asSendError(t, err)
		require.Equal(t, 0, se.Status)
		require.True(t, se.Retryable)
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.URL
		srv.Close()
		c := newTestClient(t, testConfig(t, addr), ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
		se := asSendError(t, err)
		require.Equal(t, 0, se.Status)
		require.True(t, se.Retryable)
	})
	t.Run("unknown scheme", func(t *testing.T) {
		// A config with an unknown scheme loads; sends fail and are retried.
		c := newTestClient(t, testConfig(t, "foo://127.0.0.1:1/write"), ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
		se := asSendError(t, err)
		require.Equal(t, 0, se.Status)
		require.True(t, se.Retryable)
	})
}

func TestClientWrittenHeaders(t *testing.T) {
	for _, tc := range []struct {
		name        string
		proto       queue.Protocol
		req         queue.Request
		respond     func(w http.ResponseWriter, r *http.Request)
		want        queue.Written
		unsupported bool
	}{
		{
			name: "rw2 with written headers", proto: queue.RW2,
			req:     queue.Request{Samples: 5, Histograms: 2, Exemplars: 1},
			respond: writtenHeaders(5, 2, 1),
			want:    queue.Written{Known: true, Samples: 5, Histograms: 2, Exemplars: 1},
		},
		{
			name: "rw2 partial write", proto: queue.RW2,
			req:     queue.Request{Samples: 5},
			respond: writtenHeaders(3, 0, 0),
			want:    queue.Written{Known: true, Samples: 3},
		},
		{
			name: "rw2 headers saying zero written is a success the queue accounts", proto: queue.RW2,
			req:     queue.Request{Samples: 5},
			respond: writtenHeaders(0, 0, 0),
			want:    queue.Written{Known: true},
		},
		{
			name: "rw2 only one header", proto: queue.RW2,
			req: queue.Request{Samples: 5},
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set(headerSamplesWritten, "5")
			},
			want: queue.Written{Known: true, Samples: 5},
		},
		{
			name: "rw2 unparsable header counts as zero", proto: queue.RW2,
			req: queue.Request{Samples: 5},
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set(headerSamplesWritten, "lots")
				w.Header().Set(headerHistogramsWritten, "-3")
			},
			want: queue.Written{Known: true},
		},
		{
			name: "rw2 2xx without headers", proto: queue.RW2,
			req:         queue.Request{Samples: 5},
			respond:     func(http.ResponseWriter, *http.Request) {},
			unsupported: true,
		},
		{
			name: "rw2 204 without headers, histograms only", proto: queue.RW2,
			req:         queue.Request{Histograms: 1},
			respond:     func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
			unsupported: true,
		},
		{
			name: "rw2 2xx without headers, exemplars only", proto: queue.RW2,
			req:         queue.Request{Exemplars: 1},
			respond:     func(http.ResponseWriter, *http.Request) {},
			unsupported: true,
		},
		{
			name: "rw2 2xx without headers for an empty request", proto: queue.RW2,
			req:     queue.Request{},
			respond: func(http.ResponseWriter, *http.Request) {},
			want:    queue.Written{},
		},
		{
			name: "rw1 without headers", proto: queue.RW1,
			req:     queue.Request{Samples: 5, Metadata: 3},
			respond: func(http.ResponseWriter, *http.Request) {},
			want:    queue.Written{},
		},
		{
			name: "rw1 with headers", proto: queue.RW1,
			req:     queue.Request{Samples: 5},
			respond: writtenHeaders(4, 0, 0),
			want:    queue.Written{Known: true, Samples: 4},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, tc.respond)
			c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
			req := tc.req
			req.Protocol = tc.proto
			req.Body = []byte("x")
			written, err := c.Send(context.Background(), &req, 0)
			if tc.unsupported {
				se := asSendError(t, err)
				require.ErrorIs(t, err, queue.ErrUnsupportedProtocol)
				require.False(t, se.Retryable)
				require.Equal(t, http.StatusOK, se.Status/100*100)
				require.False(t, written.Known)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, written)
		})
	}
}

func TestClientErrorBodyTruncated(t *testing.T) {
	srv := newRecordingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(bytes.Repeat([]byte("j"), 1<<20))
	})
	c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
	_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
	se := asSendError(t, err)
	require.Equal(t, http.StatusBadRequest, se.Status)
	require.False(t, se.Retryable)
	require.Contains(t, err.Error(), strings.Repeat("j", maxErrBodyLen))
	require.NotContains(t, err.Error(), strings.Repeat("j", maxErrBodyLen+1))

	// The connection is still usable afterwards (or replaced): a second
	// send works.
	_, err = c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
	require.Error(t, err)
	require.Len(t, srv.requests(), 2)
}

func TestClientEmptyErrorBody(t *testing.T) {
	srv := newRecordingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
	})
	c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
	_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
	require.EqualError(t, err, "send: server returned HTTP status 409: Conflict")
}

func TestClientConcurrentSends(t *testing.T) {
	srv := newRecordingServer(t, writtenHeaders(1, 0, 0))
	c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.Protocol(i % 2), Body: []byte{byte(i)}, Samples: 1}, i%3)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, srv.requests(), 32)
}

func TestNewClientRejects(t *testing.T) {
	base := func() *config.RemoteWriteConfig { return testConfig(t, "http://127.0.0.1:1/write") }
	// AWS's shared files, empty: the missing profile is missing here too.
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	for _, tc := range []struct {
		name   string
		mutate func(*config.RemoteWriteConfig)
		errMsg string
	}{
		{"nil url", func(c *config.RemoteWriteConfig) { c.URL = nil }, "url for remote_write is empty"},
		// Credentials that cannot be found are configuration errors, found
		// without the network (no instance metadata service is asked).
		{"sigv4 profile missing", func(c *config.RemoteWriteConfig) {
			c.SigV4Config = &sigv4.SigV4Config{Region: "us-east-1", Profile: "walship-nosuch"}
		}, "sigv4"},
		{"azuread without credential", func(c *config.RemoteWriteConfig) { c.AzureADConfig = &azuread.AzureADConfig{Cloud: "AzurePublic"} }, "azuread: no credential"},
		{"azuread certificate missing", func(c *config.RemoteWriteConfig) {
			c.AzureADConfig = &azuread.AzureADConfig{Certificate: &azuread.CertificateConfig{ClientID: "c", TenantID: "t", CertificatePath: "/nonexistent/cert.pem"}}
		}, "cert.pem"},
		{"google_iam key file missing", func(c *config.RemoteWriteConfig) {
			c.GoogleIAMConfig = &googleiam.Config{CredentialsFile: "/nonexistent/sa.json"}
		}, "google_iam"},
		{"bad tls", func(c *config.RemoteWriteConfig) {
			c.HTTPClientConfig.TLSConfig = commoncfg.TLSConfig{CAFile: "/nonexistent/ca.pem"}
		}, "ca.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mutate(cfg)
			_, err := NewClient("q", cfg, ClientOptions{})
			require.ErrorContains(t, err, tc.errMsg)
		})
	}
	_, err := NewClient("q", nil, ClientOptions{})
	require.Error(t, err)
}

func TestClientDefaults(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/write")
	cfg.RemoteTimeout = 0
	c := newTestClient(t, cfg, ClientOptions{})
	require.Equal(t, 30*time.Second, c.timeout)
	require.Equal(t, "test", c.Name())
	require.Equal(t, "http://127.0.0.1:1/write", c.Endpoint())

	// An injected *http.Client is used as it is.
	srv := newRecordingServer(t, nil)
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("X-Through-Override", "1")
		return http.DefaultTransport.RoundTrip(r)
	})
	c = newTestClient(t, testConfig(t, srv.URL), ClientOptions{HTTPClient: &http.Client{Transport: rt}})
	_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("x")}, 0)
	require.NoError(t, err)
	require.Equal(t, "1", srv.last(t).header.Get("X-Through-Override"))

	_, err = c.Send(context.Background(), &queue.Request{Protocol: queue.Protocol(7), Body: []byte("x")}, 0)
	se := asSendError(t, err)
	require.False(t, se.Retryable)
}

// TestClientSaysWhenTheBodyIsInUse: Send leaves req.BodyInUse unset only
// when the transport is known to be done with the body (it put the
// connection back for reuse after writing the request whole); otherwise
// the queue must not write into the body again.
func TestClientSaysWhenTheBodyIsInUse(t *testing.T) {
	send := func(t *testing.T, c *Client, body []byte) (*queue.Request, error) {
		t.Helper()
		req := &queue.Request{Protocol: queue.RW1, Body: body}
		_, err := c.Send(context.Background(), req, 0)
		return req, err
	}

	t.Run("written whole and answered", func(t *testing.T) {
		srv := newRecordingServer(t, nil)
		c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
		for range 3 { // a new connection, then the same one again
			req, err := send(t, c, []byte("payload"))
			require.NoError(t, err)
			require.False(t, req.BodyInUse)
		}
		require.Len(t, srv.requests(), 3)
	})

	t.Run("a transport keeping the body", func(t *testing.T) {
		var kept io.Reader
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			kept = r.Body // still holding it after Do returned
			return &http.Response{StatusCode: http.StatusNoContent, Status: "204 No Content", Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		c := newTestClient(t, testConfig(t, "http://127.0.0.1:1/write"), ClientOptions{HTTPClient: &http.Client{Transport: rt}})
		req, err := send(t, c, []byte("payload"))
		require.NoError(t, err)
		require.NotNil(t, kept)
		require.True(t, req.BodyInUse)
	})

	t.Run("answered before the body was read", func(t *testing.T) {
		// The endpoint refuses at once and never reads a body too large
		// for the connection's buffers: the transport is still writing it
		// when Do returns.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no", http.StatusBadRequest)
		}))
		t.Cleanup(srv.Close)
		c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
		req, err := send(t, c, make([]byte, 64<<20))
		require.Error(t, err) // the 400, or the connection the server closed under the write
		require.True(t, req.BodyInUse)
	})

	t.Run("read again for a redirect", func(t *testing.T) {
		var srv *recordingServer
		srv = newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/write" {
				http.Redirect(w, r, srv.URL+"/moved", http.StatusTemporaryRedirect)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
		c := newTestClient(t, testConfig(t, srv.URL+"/write"), ClientOptions{})
		req, err := send(t, c, []byte("payload"))
		require.NoError(t, err)
		require.True(t, req.BodyInUse)
	})

	t.Run("a refused connection", func(t *testing.T) {
		c := newTestClient(t, testConfig(t, "http://127.0.0.1:1/write"), ClientOptions{})
		req, err := send(t, c, []byte("payload"))
		require.True(t, asSendError(t, err).Retryable)
		require.True(t, req.BodyInUse, "unknown: set")
	})

	t.Run("never cleared", func(t *testing.T) {
		srv := newRecordingServer(t, nil)
		c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
		req := &queue.Request{Protocol: queue.RW1, Body: []byte("payload"), BodyInUse: true}
		_, err := c.Send(context.Background(), req, 1)
		require.NoError(t, err)
		require.True(t, req.BodyInUse, "a clean retry says nothing of the attempt before")
	})

	// An empty body is sent as no body, with Content-Length 0.
	srv := newRecordingServer(t, nil)
	c := newTestClient(t, testConfig(t, srv.URL), ClientOptions{})
	_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1}, 0)
	require.NoError(t, err)
	got := srv.last(t)
	require.Empty(t, got.body)
	require.Equal(t, "0", got.header.Get("Content-Length"))
}

// TestClientWriteBuffer: the connections a Client opens buffer a whole
// request of common size (headers and body), so that it leaves in one
// write, when prometheus/common's transport is reachable.
func TestClientWriteBuffer(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/write")
	c := newTestClient(t, cfg, ClientOptions{})
	tr, ok := c.client.Transport.(*http.Transport)
	require.True(t, ok, "a plain configuration's transport is net/http's")
	require.Equal(t, requestWriteBufferSize, tr.WriteBufferSize)

	// With basic_auth, prometheus/common wraps the transport and the
	// default buffer stays; sending works the same.
	srv := newRecordingServer(t, nil)
	cfg = testConfig(t, srv.URL)
	cfg.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: "u", Password: "p"}
	c = newTestClient(t, cfg, ClientOptions{})
	_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("payload")}, 0)
	require.NoError(t, err)
	require.Equal(t, []byte("payload"), srv.last(t).body)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestClientUpstreamReceiverRW1 checks that upstream Prometheus' receiver
// accepts an RW1 request sent by this client, and that its samples arrive.
func TestClientUpstreamReceiverRW1(t *testing.T) {
	app := newUpstreamReceiver(t, remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType)

	now := time.Now().UnixMilli()
	wr := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}},
				Samples: []prompb.Sample{{Timestamp: now - 1000, Value: 1}, {Timestamp: now, Value: 0}},
				Exemplars: []prompb.Exemplar{{
					Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: now,
				}},
			},
			{
				Labels:  []prompb.Label{{Name: "__name__", Value: "temp_celsius"}, {Name: "room", Value: "b"}},
				Samples: []prompb.Sample{{Timestamp: now, Value: -3.5}},
			},
		},
	}
	raw, err := wr.Marshal()
	require.NoError(t, err)

	c := newTestClient(t, testConfig(t, app.URL+"/api/v1/write"), ClientOptions{})
	written, err := c.Send(context.Background(), &queue.Request{
		Protocol: queue.RW1, Body: snappy.Encode(nil, raw), Samples: 3, Exemplars: 1,
	}, 0)
	require.NoError(t, err)
	// Upstream's RW1 path answers 204 without written headers.
	require.False(t, written.Known)

	samples, _, exemplars := app.Snapshot()
	require.Equal(t, map[string][]prompb.Sample{
		`{__name__="up", job="a"}`:            {{Timestamp: now - 1000, Value: 1}, {Timestamp: now, Value: 0}},
		`{__name__="temp_celsius", room="b"}`: {{Timestamp: now, Value: -3.5}},
	}, samples)
	require.Len(t, exemplars[`{__name__="up", job="a"}`], 1)
	require.Equal(t, `{trace_id="abc"}`, exemplars[`{__name__="up", job="a"}`][0].Labels.String())

	// A corrupt body is a 400 from upstream: not retryable.
	_, err = c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte("definitely not snappy"), Samples: 1}, 0)
	se := asSendError(t, err)
	require.Equal(t, http.StatusBadRequest, se.Status)
	require.False(t, se.Retryable)
}

// TestClientUpstreamReceiverRW2 checks the RW2 side against upstream's
// receiver: the written headers come back, and a receiver that accepts
// only RW1 answers 415, which the client reports as ErrUnsupportedProtocol.
func TestClientUpstreamReceiverRW2(t *testing.T) {
	now := time.Now().UnixMilli()
	st := writev2.NewSymbolTable()
	req := &writev2.Request{
		Timeseries: []writev2.TimeSeries{{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up", "job", "b"), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: now - 1000}, {Value: 1, Timestamp: now}},
		}},
	}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	body := snappy.Encode(nil, raw)

	t.Run("accepted", func(t *testing.T) {
		app := newUpstreamReceiver(t, remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType)
		c := newTestClient(t, testConfig(t, app.URL+"/api/v1/write"), ClientOptions{})
		written, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW2, Body: body, Samples: 2}, 0)
		require.NoError(t, err)
		require.Equal(t, queue.Written{Known: true, Samples: 2}, written)
		samples, _, _ := app.Snapshot()
		require.Equal(t, map[string][]prompb.Sample{
			`{__name__="up", job="b"}`: {{Timestamp: now - 1000, Value: 1}, {Timestamp: now, Value: 1}},
		}, samples)
	})
	t.Run("rw1-only receiver", func(t *testing.T) {
		app := newUpstreamReceiver(t, remoteapi.WriteV1MessageType)
		c := newTestClient(t, testConfig(t, app.URL+"/api/v1/write"), ClientOptions{})
		_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW2, Body: body, Samples: 2}, 0)
		se := asSendError(t, err)
		require.Equal(t, http.StatusUnsupportedMediaType, se.Status)
		require.False(t, se.Retryable)
		require.ErrorIs(t, err, queue.ErrUnsupportedProtocol)
		samples, _, _ := app.Snapshot()
		require.Empty(t, samples)
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"   ", 0},
		{"0", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"-5", 0},
		{"1.5", 0},
		{"5s", 0},
		{"soon", 0},
		{"99999999999999999999999", time.Duration(maxRetryAfterSeconds) * time.Second},
		{"-99999999999999999999999", 0},
		{"9223372036854775807", time.Duration(maxRetryAfterSeconds) * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Format(http.TimeFormat), 0},
		{now.Add(time.Minute).Format(time.RFC850), time.Minute},
		{now.Add(time.Minute).Format(time.ANSIC), time.Minute},
		{"Wed, 32 Nov 2026 12:00:00 GMT", 0},
		{now.Add(time.Minute).Format(time.RFC3339), 0},
	} {
		t.Run(tc.value, func(t *testing.T) {
			require.Equal(t, tc.want, parseRetryAfter(tc.value, now))
		})
	}
}
