// Package remote is the protocol side of walship's remote write: the HTTP
// client that delivers encoded requests to one remote_write endpoint.
//
// Client implements queue.Sender. It sends a request's body as it is
// (the queue encodes and compresses it once), sets the Remote-Write 1.0 or
// 2.0 headers, applies the endpoint's HTTP client settings (TLS, basic auth,
// bearer token, OAuth2, proxy, headers) through prometheus/common/config,
// and classifies every answer into success or a *queue.SendError that says
// whether a retry may succeed. It never retries by itself; the delays
// between retries are the queue's business (queue.Backoff).
package remote
