// Package remote is what a Prometheus fork or walship's agent wires in to
// ship a WAL: Storage, one watcher and one queue per remote_write entry, and
// Client, the HTTP side of one endpoint.
//
// # Storage
//
// Storage is configured like upstream's remote storage, by ApplyConfig with
// a Prometheus configuration, and NewStorage takes upstream's constructor
// arguments, so a fork switches by changing that one call. Each remote_write
// entry gets a queue.Manager fed by a watcher.Watcher of the WAL, and a
// durable position file named after the entry (its name, or its URL), so a
// restart or a reload resumes where the endpoint's acknowledgements stopped.
// A reload restarts only the entries whose configuration changed (all of
// them when the external labels change): a stopping entry flushes within the
// flush deadline, saves the position the flush reached, and the new one
// resumes there. Notify (the TSDB's write notifications) wakes the watchers.
// The Appender only counts samples and tracks the highest timestamp: data
// reaches the endpoints through the WAL, never through memory.
//
// # Client
//
// Client implements queue.Sender. It sends a request's body as it is
// (the queue encodes and compresses it once), sets the Remote-Write 1.0 or
// 2.0 headers, applies the endpoint's HTTP client settings (TLS, basic auth,
// bearer token, OAuth2, proxy, headers) through prometheus/common/config,
// and classifies every answer into success or a *queue.SendError that says
// whether a retry may succeed. It never retries by itself; the delays
// between retries are the queue's business (queue.Backoff).
//
// # Goroutines
//
// Each entry has one goroutine (its endpoint's run loop, which runs the
// watcher) plus the queue's; ApplyConfig and Close stop them and wait. A
// watcher that fails (its directory vanished) is restarted from the saved
// position after a pause, with a fresh queue.
package remote
