// Package remote is what a Prometheus fork or walship's agent wires in to
// ship a WAL: Storage, which runs a pipeline (one watcher feeding a queue
// per lane) per group of remote_write entries, and Client, the HTTP side of
// one endpoint.
//
// # Storage
//
// Storage is configured like upstream's remote storage, by ApplyConfig with
// a Prometheus configuration, and NewStorage takes upstream's constructor
// arguments, so a fork switches by changing that one call. Each remote_write
// entry (endpoint.go) has its Client and a durable position file named
// after it (its name, or its URL), so a restart or a reload resumes where
// the endpoint's acknowledgements stopped.
//
// A pipeline (pipeline.go) is a watcher.Watcher of the WAL feeding the
// queue.Manager of each of its lanes (lane.go). Entries saved near each
// other (within 1 MiB of WAL; those behind first catch up alone) with the
// same exemplar and histogram settings form a group (group.go) with one
// pipeline: the WAL is read and decoded once. Within it, entries whose
// requests would be the same bytes (same write_relabel_configs,
// queue_config, metadata_config, protocol; URL, client settings and
// credentials may differ) form a lane: each series held once, each request
// built and compressed once and sent to every member at once by a fanout
// (fanout.go), which only returns when all took it. The queue's metrics
// count for each member. Several lanes get what the watcher reads through
// a tee (tee.go), which hands each lane only what it has not taken yet. A
// member that refuses what another took, or is more than Options.GroupLag
// late on a request another took, leaves the group, and so does a lane
// whose queue took nothing for the lag while another took more: it gets a
// pipeline of its own, owned by the group's, starting at the group's last
// saved position (what it may have had since is sent to it again, nothing
// is skipped). So an endpoint that is down holds the others back by at
// most the lag, once. Once it is back and has kept up with the others for
// Options.RegroupAfter, the group re-forms (regroup.go): it restarts as a
// reload would restart it, and one watcher reads for all again; so it
// does at the next start. Entries that keep leaving again wait twice as
// long each time, up to an hour.
//
// A reload restarts only the pipelines with an entry that changed or went
// away (all of them when the external labels change), every lane of such a
// pipeline with it: a stopping pipeline
// flushes within the flush deadline and saves the position the flush
// reached, and its entries that stay resume there in new pipelines.
// Notify (the TSDB's write notifications) wakes the watchers.
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
// Each pipeline has one goroutine (its run loop, which runs the watcher)
// plus its queues', and owns the pipelines of members and lanes that left
// its group;
// ApplyConfig and Close stop them and wait. The fanout sends to each
// member from a goroutine of its own per attempt and waits for all of
// them. A watcher that fails (its directory vanished) is restarted from
// the saved position after a pause, with fresh queues. The Storage has
// one goroutine of its own, the regrouper, which the first successful
// ApplyConfig (without StopAtEnd) starts and Close stops.
package remote
