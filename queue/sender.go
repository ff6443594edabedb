package queue

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file is the queue's border with HTTP: the Request a queue builds,
// the Sender that delivers it (package remote implements it), and the
// errors a Sender answers with.

// Protocol is the remote-write message a request carries.
type Protocol int

// The remote-write protocols, named as the protobuf_message config key names them.
const (
	// RW1 is Remote-Write 1.0, prometheus.WriteRequest.
	RW1 Protocol = iota
	// RW2 is Remote-Write 2.0, io.prometheus.write.v2.Request.
	RW2
)

// String returns the protobuf_message value of p.
func (p Protocol) String() string {
	if p == RW2 {
		return "io.prometheus.write.v2.Request"
	}
	return "prometheus.WriteRequest"
}

// Request is one request ready to send: its body is encoded and compressed
// once, and every retry sends these same bytes.
type Request struct {
	Protocol Protocol
	// Body is the snappy-compressed (block format) protobuf message.
	Body []byte
	// What the request carries, for the receiver's written-counts check and metrics.
	Samples, Histograms, Exemplars, Metadata int
	// BodyInUse is set by a Sender that may still read Body after Send
	// returned (an HTTP transport still writing it to a connection): the
	// caller then never writes into Body's memory again. A Sender sets it,
	// and never clears it: a later attempt that ended cleanly says nothing
	// of an earlier one.
	BodyInUse bool
}

// Written is what a receiver says it wrote, from the
// X-Prometheus-Remote-Write-*-Written response headers. Known is false
// when the response had none of them (every RW1 receiver).
type Written struct {
	Known                          bool
	Samples, Histograms, Exemplars int
}

// Sender delivers requests to one endpoint.
//
// Send returns nil only when the endpoint accepted the request (a 2xx).
// It never retries by itself: a failure is a *SendError saying whether a
// retry may succeed, and after how long at least. attempt is 0 for the
// first try and counts retries (sent as the Retry-Attempt header). Send
// must be safe for concurrent use, and must not read req.Body after it
// returns unless it set req.BodyInUse.
type Sender interface {
	Send(ctx context.Context, req *Request, attempt int) (Written, error)
}

// SendError is a failed send.
type SendError struct {
	// Status is the HTTP status code, 0 for a network error or timeout.
	Status int
	// Retryable says whether sending the same request again may succeed:
	// network errors, timeouts, 5xx and 429.
	Retryable bool
	// RetryAfter is the endpoint's Retry-After, zero when it gave none.
	RetryAfter time.Duration
	Err        error
}

// Error describes the failure.
func (e *SendError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("send: %v", e.Err)
	}
	return fmt.Sprintf("send: server returned HTTP status %d: %v", e.Status, e.Err)
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// ErrUnsupportedProtocol is wrapped by a SendError for a 415 answer to an
// RW2 request (or an RW2 2xx that says it wrote nothing): the endpoint
// speaks only RW1, and the queue falls back to it.
var ErrUnsupportedProtocol = errors.New("queue: endpoint does not accept this remote-write protocol")
