// Package storage is walship's agent storage: a storage.Appendable that
// writes everything appended to a write-ahead log and nothing else, for
// deployments that only ship samples (Prometheus's agent mode), built on
// walship's own wal and wal/record packages.
//
// # What is written
//
// Open(dir) keeps its log in dir/wal, the directory remote-write watchers
// read. Every series gets a ref, handed out in increasing order and
// remembered by label hash (collisions are resolved by comparing labels);
// the ref is announced in a series record the first time a committed
// transaction uses the series. A Commit writes that series record and the
// transaction's metadata, samples, histograms, float histograms and
// exemplars in one all-or-nothing wal.Writer.Log call, then calls
// Options.Notify. A Log call that fails is cut back and written over, so
// the watchers reading the log are bounded by Committed (the end of the
// last record logged without error): they never read a failed write.
// Samples at or before a series' newest committed sample
// are refused with storage.ErrOutOfOrderSample, as upstream's agent does.
// Open replays the newest checkpoint and the segments after it, so the same
// labels keep their ref across restarts; a torn or damaged tail of the
// newest segment is cut off by wal.Repair, and damage in an older segment
// is passed over to the next intact record (counted and logged), never
// deleted, so no endpoint's saved position ends up past the end of the log.
//
// # When segments are deleted
//
// Truncate (Run calls it every TruncateFrequency) forgets series without
// recent samples, writes checkpoint.N holding the series records (and the
// newest metadata) still needed, and deletes segments up to N and older
// checkpoints. N is below the lowest position any endpoint has acknowledged
// (Options.Acked), so a segment is only deleted once every endpoint sent
// it, and never the segment being written. A forgotten series keeps its
// series record in checkpoints until every segment that may reference it
// is deleted.
//
// The one exception is the disk budget, Options.MaxWALBytes: when the log
// directory exceeds it, the oldest segments go, acknowledged or not, until
// it fits. Before deleting them the truncation reads them and counts, per
// endpoint, the samples (floats and histograms) at or after its
// acknowledged position in walship_storage_unsent_samples_deleted_total,
// and logs one warning. The size is measured at every truncation and
// estimated in between from what commits wrote, so a commit that takes the
// log over the budget wakes Run at once (see budget.go for the rate limit).
//
// # Concurrency
//
// A DB is safe for concurrent use; each appender belongs to one goroutine.
// Lookups by labels take a read lock on one of many stripes, lookups by
// ref no lock at all (refIndex); commits serialise on the writer. Run is the only goroutine the package uses, owned by its
// caller; it ends with its context or Close.
//
// # Differences from upstream's agent
//
// Rollback writes nothing (upstream logs the new series); a series record
// is written by the first commit that needs it instead, so samples never
// precede their series record even when two appenders create the same
// series. Metadata records are always written when metadata changes
// (upstream needs a feature flag). Checkpoints keep no samples.
package storage
