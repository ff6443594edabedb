// Package queue is the remote-write queue of one endpoint: it takes the
// records a watcher reads from the WAL, batches their samples, encodes each
// batch once and sends it through a Sender until the endpoint takes it.
//
// # A sample's path
//
// The watcher hands over one record's samples with the record's place in
// the WAL (Manager.AppendSamples and friends). Each sample's series was
// stored earlier (StoreSeries): with external labels added where missing and
// write_relabel_configs applied, its labels were interned once (labels.go):
// every string once, and every label whose value other series share, and
// runs of labels series share, once in a label table with its RW1
// encoding and its RW2 string ids; the series is a short string of ids.
// A sample then goes to the shard of its series (ref modulo the number of shards), so one series' samples stay in
// order. If a shard is full, Append returns how many samples
// it took and the watcher waits for Ready: the backlog stays in the WAL.
//
// A shard cuts a batch when max_samples_per_send samples wait, or when
// batch_send_deadline passes without a send. The batch is encoded into one
// request (copying each label's or run's encoding from the table; no label
// is marshalled again) and
// snappy-compressed once; every retry sends the same bytes, with jittered
// exponential backoff and the endpoint's Retry-After. When sample_age_limit
// is set, samples that grew too old leave the batch before every attempt
// (the rest is encoded again). A
// shard has one request on the wire at a time, and builds its next one
// while it waits for the answer.
//
// # When a sample counts as sent, dropped or pending
//
// A sample is pending from the moment a shard takes it until its request
// is accepted (sent: prometheus_remote_storage_samples_total) or refused for
// good (failed: _samples_failed_total). Samples of unknown series, of series
// dropped by relabelling and older than sample_age_limit never enter a shard
// (dropped: _samples_dropped_total{reason}). Histograms and exemplars are
// counted the same way in their own metrics (_histograms_total, ...). RW2
// forbids series entries with exemplars only: an exemplar joins its
// series' sample or histogram waiting in a shard (feed.attach), or, when
// that went out already, waits for the series' next one (heldExemplars);
// one whose series has none for five minutes is dropped (reason
// no_sample_in_request). LowestPending reports the start
// of the oldest WAL record that still has pending samples, which is where
// the watcher resumes after a restart: nothing acknowledged is sent again
// except what was in flight.
//
// # Protocols
//
// RW1 (prometheus.WriteRequest) and RW2 (io.prometheus.write.v2.Request)
// requests are built by rw1Encoder and rw2Encoder, byte-identical to what
// gogo's marshalling of the same message gives. An RW2 queue whose endpoint
// answers 415 (or a 2xx without the written-count headers) falls back to RW1
// for good.
//
// # Parts
//
// The Manager owns the queue's parts and gives each the parts it reports
// to; no part holds the Manager or calls back into it. In the order a
// sample meets them:
//
//   - intake (intake.go, feed.go, held.go, series.go): the watcher's
//     Consumer side, on the watcher's goroutine: the series cache, and
//     queueing each record's items into their shards.
//   - shardSet and shard (shards.go, shard.go, itemqueue.go): the running
//     shards; a shard's buffer, its loop and its two flights.
//   - request builders and encoders (builder.go; encode_rw1.go,
//     encode_rw2.go, rw2_symbols.go, rw2_refs.go, histogram_pb.go,
//     protowire.go; labels.go, labelset.go, intern.go; compress.go): a
//     batch in, a compressed request body out.
//   - deliver (deliver.go): one batch until each item ended, with 413
//     halving (toolarge.go) and the RW1 fall-back.
//   - sendPolicy (send.go, backoff.go): one request's attempts and
//     backoff; it owns the protocol in use and the learned request size.
//   - ledger (ledger.go, ack.go): accounting: every item ends once, as
//     sent, failed or dropped, and the lowest unacknowledged position.
//   - shardPlanner (reshard.go, rate.go): the shard count, from the load
//     the other parts measure (loadSignals).
//   - metadataSender (metadata.go): RW1 metadata requests of their own.
//
// # Goroutines
//
// Run's goroutine owns the shard set, the planner and the reshard loop;
// it starts the metadata sender's goroutine and the shards'. A shard has
// two goroutines: run, which takes batches, builds requests and sends
// retries, and wire, which makes each request's first attempt so that run
// can build the next request meanwhile; only run builds. Every 10 s the
// planner asks desiredShards for a shard count; a reshard lets the shards
// send what they hold and starts a new set. Run returns when its context
// ends or after Flush, once every goroutine it started returned. The
// Append methods, StoreSeries, StoreMetadata and SeriesReset are called
// from one goroutine, the watcher's, which owns the intake.
package queue
