// Package testkit is what walship's tests share: an endpoint to ship to, a
// way to read a metric, and a way to wait.
//
// A test of the sending side runs the real thing (a queue, a client, the
// whole binary) against a [Receiver]: a real HTTP server on 127.0.0.1 that
// reads each request as an endpoint does (snappy, then Remote-Write 1.0 or
// 2.0 protobuf, by the Content-Type) and records what it accepted: every
// series' samples in arrival order, the RW2 metadata type each came with,
// RW1 metadata, how many histograms and exemplars, and a log of every
// request with the answer it got. The test chooses the answers, request by
// request, with [Receiver.Respond]: a status, headers such as Retry-After or
// X-Prometheus-Remote-Write-Samples-Written, a delay, a request held until
// the test lets it go, a connection closed without an answer.
//
// Where the question is whether upstream Prometheus takes what walship
// sends, remote's tests serve upstream's own remote-write handler instead
// (remote/upstream_oracle_test.go): only _test.go files may import
// upstream's implementation, and the kit is not one.
//
// [Metric] reads one metric's value from a prometheus.Gatherer, and
// [Eventually] waits for a condition by looking at it every few
// milliseconds until a deadline, never by sleeping a guessed time.
//
// The kit is for _test.go files only. It imports no walship package, so the
// tests of every package, internal or external, may use it.
package testkit
