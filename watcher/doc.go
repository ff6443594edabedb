// Package watcher tails a write-ahead log directory, the one Prometheus or
// walship's own storage is writing, and feeds every record to a Consumer (a
// remote-write queue). It knows nothing of HTTP: the consumer decides when
// samples are sent and tells the watcher what has been acknowledged.
//
// # Where it starts
//
// With Start FromPosition (the default) the watcher resumes at the
// consumer's saved position: everything before it was acknowledged by the
// endpoint before the last stop. FromBeginning starts at the oldest segment
// still in the log; FromNow sends only samples newer than the start, from
// the newest segment on, as upstream Prometheus does. Whatever the start,
// the newest checkpoint's series and every series record before the start
// are replayed first (series and metadata only), so the consumer knows the
// labels of every sample it is then given.
//
// If the saved position lies in segments that were deleted while walship was
// down (the writer truncated its log), the watcher starts at the oldest
// segment still there and reports the gap: the segments skipped, and an
// estimate of the samples they held, as metrics and a log line.
//
// # Following the log
//
// Each segment is read with a wal.LiveReader. When it has read all there is,
// the watcher waits for the writer: a Notify call, a file-system event on
// the directory, or the poll ticker. When a newer segment exists, the
// current one is read to its end one last time and the watcher moves on.
// A torn record at the end of a finished segment (what a crash leaves) is
// skipped, counted and logged. Damage anywhere, in the segment being
// written too, is logged with segment and offset and passed over to the
// next intact record (wal.LiveReader.Resync: the first record to begin a
// later page), and the bytes passed over are counted: only the records the
// damage reached are lost. A torn record at the end of the segment still
// being written is simply not complete yet. A damaged checkpoint loses the
// series (or, backfilling, the samples) of its damaged records only. New checkpoints are read for their series, and the consumer
// is told (SeriesReset) which series the log no longer holds.
//
// # Backpressure and durable positions
//
// The consumer's Append methods take one record's samples and say how many
// they accepted. When the consumer is full the watcher waits and hands over
// the rest again; it reads nothing more meanwhile, so memory does not grow
// with the backlog, which stays on disk.
//
// Each record is handed over with its Span in the log. The consumer reports
// the start of the earliest record it still has unacknowledged samples of
// (LowestPending); the watcher saves the lowest position not yet fully
// acknowledged through its PositionStore at SaveInterval and when Run
// returns. After a crash, the samples sent twice are at most those handed
// over after the last save, and those between the saved position and the
// acknowledgement (what was in flight); nothing is lost.
//
// # Goroutines
//
// Run is the watcher's only goroutine; it returns when its context ends.
// Notify may be called from any goroutine. Consumer methods are called from
// Run's goroutine.
package watcher
