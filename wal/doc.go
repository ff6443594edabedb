// Package wal reads and writes the write-ahead log of Prometheus 3.x, byte
// for byte: a log written by Prometheus (or any fork) reads here, and a log
// written here reads in Prometheus.
//
// # Directory
//
// A log is a directory of segment files named by index in eight decimal
// digits (00000000, 00000001, ...). The segment with the highest index is
// the one being written; the others are closed. Next to them may lie
// checkpoint directories, "checkpoint.NNNNNNNN", each a log of its own
// holding what was kept of segments up to NNNNNNNN when they were deleted.
// Any other file (a "checkpoint.N.tmp" being built, a ".broken" tail kept by
// Repair, an old ".repair" file) is not a segment and is ignored.
//
// # Pages and fragments
//
// A segment is a sequence of 32 KiB pages. A record (the payload; its
// layout is package record's business) is cut into fragments so that no
// fragment crosses a page boundary. Each fragment has a 7-byte header:
//
//	+---------+-----------+-----------+------------------+
//	| type: 1 | length: 2 | CRC32C: 4 | payload: length  |
//	+---------+-----------+-----------+------------------+
//
//	type byte:  bits 0-2  1 full, 2 first, 3 middle, 4 last (0: padding)
//	            bit 3     record is snappy-compressed (block format)
//	            bit 4     record is zstd-compressed (one frame)
//	            bits 5-7  zero
//
// Length is big-endian and at most 32761, the CRC (Castagnoli) covers the
// payload only. A record that fits in the rest of the page is one "full"
// fragment; a larger one is "first", any number of "middle", then "last".
// Compression is applied to the whole record before it is cut, only when it
// makes the record smaller, and flagged on every fragment. A record never
// crosses a segment boundary: when it does not fit in the rest of the
// segment, the writer starts the next one (a record larger than a whole
// segment makes that segment larger than the nominal size).
//
// When fewer than 7 bytes are left in a page, or when a segment is closed,
// the rest of the page is written as zeros: a zero byte where a header
// should start means "nothing more in this page". A page without a
// record is never written, so no page begins with zeros. The last page of
// the active segment is written as records arrive, without padding, so
// that segment usually ends in the middle of a page.
//
// # Reading, and what can go wrong
//
// Reader reads closed segments; LiveReader reads the segment still being
// written. They share one parser and differ only at the end of the data:
// for a LiveReader it means "not written yet" (io.EOF, try again), for a
// Reader it means the end of the segment, and a record cut short there is
// torn (ErrTornRecord), which is what a crash leaves behind.
//
// Every other problem (a bad checksum, an impossible length or header byte,
// fragments out of order, non-zero padding, a page that begins with zeros
// (upstream's readers take it for padding, and whatever it held is lost
// without a word), a record that does not
// decompress) is a *CorruptionError naming the segment and the offset of
// the first byte that is not part of a good record. A reader can go on at
// the next intact record (Resync: the first record that begins a later
// page, since a writer begins every page with a fragment header; a
// fragment that continues a record is never taken for the start of one),
// or a Reader with the next segment (Reader.SkipSegment);
// Repair cuts the log back to the last good record, as Prometheus does
// before writing again, and keeps the cut bytes in a ".broken" file.
//
// # Writing and durability
//
// Writer produces the same bytes as Prometheus's writer for the same calls.
// Writer.Log writes a batch of records to the file, all or nothing: if a
// write fails part-way (a full disk), what the call wrote is removed again,
// so the log never ends in a half-written record. Log does not fsync: a
// process crash loses nothing that Log returned, a power loss can lose the
// unsynced tail of the active segment. Segments are fsynced when the next
// one starts and on Sync and Close. NextSegment takes back a failure
// before its fsync (the next file not created) as Log does; a failed
// fsync makes the Writer refuse
// further writes (ErrBroken), since the file's content is then unknown,
// until Recover goes on in a new segment (the caller logs again what later
// records depend on).
//
// # Glossary
//
// "Record" is the unit callers write and read; "fragment" is a piece of a
// record with its header; "page" is a 32 KiB block of a segment; "segment"
// is one file. (Upstream sometimes says "chunk" or "part" for fragments;
// here "chunk" is left to the TSDB's chunks.)
//
// # Concurrency
//
// Writer, Reader, LiveReader and CheckpointWriter are not safe for
// concurrent use; one goroutine owns each. Many readers may read a log while
// one Writer writes it.
package wal
