package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/version"
	"github.com/prometheus/prometheus/config"

	"github.com/walship/walship/queue"
)

// Header names and values of the remote-write protocols.
const (
	headerContentEncoding = "Content-Encoding"
	headerContentType     = "Content-Type"
	headerUserAgent       = "User-Agent"
	headerVersion         = "X-Prometheus-Remote-Write-Version"
	headerRetryAttempt    = "Retry-Attempt"
	headerRetryAfter      = "Retry-After"

	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"

	contentEncodingSnappy = "snappy"
	contentTypeRW1        = "application/x-protobuf"
	contentTypeRW2        = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	versionRW1            = "0.1.0"
	versionRW2            = "2.0.0"
)

const (
	// maxErrBodyLen is how much of an error response's body goes into the
	// error message; bodies can be megabytes of junk.
	maxErrBodyLen = 1024
	// maxDrainLen is how much of a response body is read and discarded so
	// the connection can be reused; past it the connection is closed.
	maxDrainLen = 256 << 10
	// httpClientName names the client in prometheus/common's connection
	// tracking.
	httpClientName = "remote_storage_write_client"
	// requestWriteBufferSize is the write buffer of the connections a
	// Client opens, where net/http's default is 4 KiB: a request of 2000
	// samples (about 50 KiB compressed) then leaves in one write instead of
	// three, which costs the sender about a tenth less CPU
	// (BenchmarkQueueSend). Past the first 128 KiB, a larger body goes in
	// writes of 32 KiB, as it would anyway.
	requestWriteBufferSize = 128 << 10
)

// DefaultUserAgent returns the User-Agent a Client sends unless
// ClientOptions.UserAgent says otherwise: "walship/<version>", the version
// coming from prometheus/common/version (set at link time), else from the
// module build information, else "dev".
func DefaultUserAgent() string { return defaultUserAgent }

// defaultUserAgent is what DefaultUserAgent returns, worked out once.
var defaultUserAgent = "walship/" + buildVersion()

func buildVersion() string {
	if version.Version != "" {
		return version.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "dev"
}

// ClientOptions are the parts of a Client that do not come from the
// remote_write configuration.
type ClientOptions struct {
	// UserAgent is sent in the User-Agent header; DefaultUserAgent() when empty.
	UserAgent string
	// HTTPClient, when set, is used as it is instead of a client built from
	// the configuration's HTTP client settings (which are then ignored; the
	// configured headers and remote_timeout still apply). For tests.
	HTTPClient *http.Client
	// HTTPClientOptions are passed to config.NewClientFromConfig when the
	// client is built from the configuration (a custom dialer, say).
	HTTPClientOptions []commoncfg.HTTPClientOption

	// azureAuthority, set by tests only, sends azuread logins to a local
	// Entra ID instead of the cloud's.
	azureAuthority *azureAuthority
}

// Client sends remote-write requests to one endpoint. It implements
// queue.Sender and is safe for concurrent use.
type Client struct {
	name    string
	url     string
	timeout time.Duration
	client  *http.Client

	// Every request's headers by protocol, built once: the configured
	// headers, then the protocol's own (which win). Each request gets a
	// copy of the map sharing the one-element value slices, which nothing
	// appends to in place (Header.Add would reallocate them).
	headersRW1, headersRW2 http.Header
}

var _ queue.Sender = (*Client)(nil)

// NewClient returns a client for the remote_write entry cfg, named name
// (the queue name, for messages). The HTTP client is built from
// cfg.HTTPClientConfig unless opts.HTTPClient is set. A cfg.RemoteTimeout
// of zero means the default remote_timeout (30s).
//
// sigv4, azuread and google_iam sign requests on top of that client (see
// withCloudAuth), and round_robin_dns resolves the endpoint's host at every
// new connection and dials one of its addresses at random, as Prometheus
// does.
func NewClient(name string, cfg *config.RemoteWriteConfig, opts ClientOptions) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("remote: nil remote_write config")
	}
	if cfg.URL == nil || cfg.URL.URL == nil || cfg.URL.String() == "" {
		return nil, fmt.Errorf("remote %q: url for remote_write is empty", name)
	}
	hc := opts.HTTPClient
	if hc == nil {
		httpOpts := opts.HTTPClientOptions
		if cfg.RoundRobinDNS {
			httpOpts = append([]commoncfg.HTTPClientOption{commoncfg.WithDialContextFunc(roundRobinDial)}, httpOpts...)
		}
		var err error
		hc, err = commoncfg.NewClientFromConfig(cfg.HTTPClientConfig, httpClientName, httpOpts...)
		if err != nil {
			return nil, fmt.Errorf("remote %q: %w", name, err)
		}
		if hc.CheckRedirect == nil { // follow_redirects, as it is by default
			hc.CheckRedirect = checkRedirect
		}
		if t, ok := hc.Transport.(*http.Transport); ok && t.WriteBufferSize == 0 {
			// See requestWriteBufferSize. Reachable when no basic_auth,
			// authorization, oauth2, http_headers or TLS files wrap the
			// transport; sigv4, azuread and google_iam wrap it below.
			t.WriteBufferSize = requestWriteBufferSize
		}
	}
	if cfg.SigV4Config != nil || cfg.AzureADConfig != nil || cfg.GoogleIAMConfig != nil {
		rt := hc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		signed, err := withCloudAuth(cfg, rt, opts.azureAuthority)
		if err != nil {
			return nil, fmt.Errorf("remote %q: %w", name, err)
		}
		withAuth := *hc
		withAuth.Transport = signed
		hc = &withAuth
	}
	timeout := time.Duration(cfg.RemoteTimeout)
	if timeout <= 0 {
		timeout = time.Duration(config.DefaultRemoteWriteConfig.RemoteTimeout)
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = defaultUserAgent
	}
	return &Client{
		name:       name,
		url:        cfg.URL.String(),
		timeout:    timeout,
		client:     hc,
		headersRW1: requestHeaders(cfg.Headers, contentTypeRW1, versionRW1, ua),
		headersRW2: requestHeaders(cfg.Headers, contentTypeRW2, versionRW2, ua),
	}, nil
}

// requestHeaders returns the headers of a request of the protocol with the
// given content type and version: the configured headers first, the
// protocol's own after them, so those win (config validation already
// rejects the reserved names).
func requestHeaders(configured map[string]string, contentType, protoVersion, userAgent string) http.Header {
	h := make(http.Header, len(configured)+4)
	for k, v := range configured {
		h.Set(k, v)
	}
	h.Set(headerContentEncoding, contentEncodingSnappy)
	h.Set(headerContentType, contentType)
	h.Set(headerVersion, protoVersion)
	h.Set(headerUserAgent, userAgent)
	return h
}

// Name returns the name the client was created with.
func (c *Client) Name() string { return c.name }

// Endpoint returns the URL requests are sent to.
func (c *Client) Endpoint() string { return c.url }

// Close releases the client's idle connections. Sends may still follow;
// they open new connections.
func (c *Client) Close() {
	c.client.CloseIdleConnections()
}

// Send POSTs req.Body to the endpoint once, with a timeout of
// remote_timeout, and classifies the answer:
//
//   - 2xx: success, with the X-Prometheus-Remote-Write-*-Written headers in
//     the returned Written. An RW2 request that carried data and got a 2xx
//     without any of those headers fails with ErrUnsupportedProtocol (the
//     receiver only speaks RW1).
//   - 415 to an RW2 request: ErrUnsupportedProtocol, not retryable.
//   - 5xx and 429: retryable, with the Retry-After the endpoint gave.
//   - network errors and timeouts: retryable, Status 0.
//   - 3xx: a 307 or 308 is followed (the same POST again), at most
//     maxRedirects in a row (see checkRedirect); one not followed is not
//     retryable.
//   - anything else (other 4xx, unfollowed 3xx, 1xx, codes past 599): not
//     retryable.
//
// Every failure is a *queue.SendError.
func (c *Client) Send(ctx context.Context, req *queue.Request, attempt int) (queue.Written, error) {
	var headers http.Header
	switch req.Protocol {
	case queue.RW1:
		headers = c.headersRW1
	case queue.RW2:
		headers = c.headersRW2
	default:
		return queue.Written{}, &queue.SendError{Err: fmt.Errorf("unknown remote-write protocol %d", int(req.Protocol))}
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	// The body goes to the transport as a bytes.Reader, which net/http
	// writes with the headers through its write buffer (one write for a
	// whole request; see requestWriteBufferSize) instead of flushing the
	// headers first. The transport may still read those bytes after Do
	// returns: when the endpoint answered before reading them all. It is
	// known to be done with them only when it puts the connection back for
	// reuse, which it does once the request was written whole; anything
	// else (a redirect or retry that read the body again, a connection
	// closed, an error) leaves req.BodyInUse set, and the queue does not
	// write into those bytes again.
	var reused, rewound atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{PutIdleConn: func(error) { reused.Store(true) }})
	defer func() {
		if rewound.Load() || !reused.Load() {
			req.BodyInUse = true
		}
	}()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(req.Body))
	if err != nil {
		return queue.Written{}, &queue.SendError{Err: fmt.Errorf("building request: %w", err)}
	}
	if len(req.Body) == 0 {
		httpReq.Body, httpReq.GetBody = http.NoBody, nil
	} else {
		httpReq.GetBody = func() (io.ReadCloser, error) { // redirects, and retries on a fresh connection
			rewound.Store(true)
			return io.NopCloser(bytes.NewReader(req.Body)), nil
		}
	}
	maps.Copy(httpReq.Header, headers)
	if attempt > 0 {
		httpReq.Header.Set(headerRetryAttempt, strconv.Itoa(attempt))
	}

	resp, err := c.client.Do(httpReq)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("request timed out after %s (remote_timeout): %w", c.timeout, err)
		}
		return queue.Written{}, &queue.SendError{Retryable: true, Err: err}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainLen))
		_ = resp.Body.Close()
	}()

	written := parseWritten(resp.Header)
	status := resp.StatusCode

	if status >= 200 && status < 300 {
		if req.Protocol == queue.RW2 && !written.Known && req.Samples+req.Histograms+req.Exemplars > 0 {
			return written, &queue.SendError{
				Status: status,
				Err: fmt.Errorf("%w: got %s to a Remote-Write 2.0 request carrying %d samples, %d histograms and %d exemplars, "+
					"but no X-Prometheus-Remote-Write-*-Written headers; the receiver likely only understands Remote-Write 1.0",
					queue.ErrUnsupportedProtocol, resp.Status, req.Samples, req.Histograms, req.Exemplars),
			}
		}
		return written, nil
	}

	msg := errorBody(resp)
	sendErr := &queue.SendError{Status: status, Err: errors.New(msg)}
	switch {
	case status >= 300 && status < 400:
		sendErr.Err = fmt.Errorf("redirected to %q, which is not followed (a redirect that would resend the data as a GET, more than %d redirects in a row, "+
			"or follow_redirects: false); set url to where the endpoint is: %s", resp.Header.Get("Location"), maxRedirects, msg)
	case status == http.StatusUnsupportedMediaType && req.Protocol == queue.RW2:
		sendErr.Err = fmt.Errorf("%w: %s", queue.ErrUnsupportedProtocol, msg)
	case status == http.StatusTooManyRequests, status >= 500 && status < 600:
		sendErr.Retryable = true
		sendErr.RetryAfter = parseRetryAfter(resp.Header.Get(headerRetryAfter), time.Now())
	}
	return written, sendErr
}

// maxRedirects is the most redirects one attempt follows: an endpoint
// redirecting in a loop costs at most maxRedirects+1 requests an attempt
// (Go's client alone follows ten), and the attempt is then refused.
const maxRedirects = 3

// checkRedirect follows a redirect that sends the request again as it was
// (307, 308), at most maxRedirects in a row. A redirect that would turn
// the POST into a GET without a body (301, 302, 303) is not followed: the
// answer to that GET would say nothing of the data, and a 200 would count
// as delivered what never was. The client then returns the redirect's own
// answer, which Send refuses for good.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if req.Method != via[0].Method || len(via) > maxRedirects {
		return http.ErrUseLastResponse
	}
	return nil
}

// errorBody returns the start of an error response's body for the error
// message, or the status text when the body is empty.
func errorBody(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBodyLen))
	if s := strings.TrimSpace(string(bytes.ToValidUTF8(b, []byte("\uFFFD")))); s != "" {
		return s
	}
	if t := http.StatusText(resp.StatusCode); t != "" {
		return t
	}
	return "no response body"
}

// parseWritten reads the Remote-Write 2.0 written-count headers. Any of
// them present makes the counts Known; a missing, unparsable or negative
// value counts as 0.
func parseWritten(h http.Header) queue.Written {
	var w queue.Written
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{headerSamplesWritten, &w.Samples},
		{headerHistogramsWritten, &w.Histograms},
		{headerExemplarsWritten, &w.Exemplars},
	} {
		v := h.Get(f.name)
		if v == "" {
			continue
		}
		w.Known = true
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			*f.dst = n
		}
	}
	return w
}

// roundRobinDialer dials round_robin_dns connections.
var roundRobinDialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}

// roundRobinDial resolves addr's host and dials one of its addresses,
// picked at random, so that an endpoint behind several DNS records gets
// the queue's connections spread over them.
func roundRobinDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("round_robin_dns: no address for %q", host)
	}
	return roundRobinDialer.DialContext(ctx, network, net.JoinHostPort(ips[rand.IntN(len(ips))], port))
}
