package wal

import (
	"errors"
	"fmt"
)

// Sentinel errors. Corruption sentinels are found wrapped in a
// *CorruptionError; test for them with errors.Is.
var (
	// ErrChecksum means a fragment's payload does not match its CRC32-C.
	ErrChecksum = errors.New("wal: checksum mismatch")
	// ErrFragmentLength means a fragment header claims more bytes than a page holds.
	ErrFragmentLength = errors.New("wal: invalid fragment length")
	// ErrFragmentType means a header byte has a fragment type that does not exist.
	ErrFragmentType = errors.New("wal: invalid fragment type")
	// ErrFragmentOrder means fragments arrived in an impossible order, such as
	// a "middle" without a "first", or a "first" inside another record.
	ErrFragmentOrder = errors.New("wal: fragment out of order")
	// ErrPadding means a page terminator was followed by a non-zero byte
	// before the end of its page, or that a page begins with one (a page
	// of zeros: no writer writes a page without a record in it).
	ErrPadding = errors.New("wal: non-zero byte in page padding")
	// ErrTornRecord means a closed segment ended inside a record (a "first"
	// or "middle" fragment was never followed by its "last") or inside a
	// fragment. It is what a crash leaves at the tail of a log.
	ErrTornRecord = errors.New("wal: torn record at end of segment")
	// ErrDecompress means a compressed record could not be decompressed.
	ErrDecompress = errors.New("wal: cannot decompress record")
	// ErrNoProgress means the underlying reader returned no data and no
	// error too many times in a row.
	ErrNoProgress = errors.New("wal: reader made no progress")
	// ErrClosed is returned by a Writer after Close.
	ErrClosed = errors.New("wal: writer closed")
	// ErrBroken means a Writer refuses writes after a failure it could not
	// undo: a failed fsync (the kernel may have dropped the segment's
	// unwritten pages, so what the file holds is unknown) or a failed
	// write it could not take back. Writer.Recover starts a new segment.
	ErrBroken = errors.New("wal: writer unusable after a failure it could not undo")
	// ErrRecordTooLarge means a record could not be written because it does
	// not fit in an empty segment and the Writer does not allow oversized
	// segments.
	ErrRecordTooLarge = errors.New("wal: record larger than a segment")
)

// CorruptionError reports where a log could not be read: the segment, the
// byte offset in it of the first byte that is not part of a good record, and
// what was wrong. Everything before Offset in Segment was read correctly.
type CorruptionError struct {
	Dir     string
	Segment int
	Offset  int64
	Err     error
}

// Error returns "wal: corruption in segment DIR/NNNNNNNN at OFFSET: ERR".
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corruption in segment %s at %d: %v", SegmentPath(e.Dir, e.Segment), e.Offset, e.Err)
}

// Unwrap returns the cause, one of the sentinels above or an I/O error.
func (e *CorruptionError) Unwrap() error { return e.Err }

// IsCorruption reports whether err says the log's content is damaged (as
// opposed to an I/O error or the end of the data). A torn tail is corruption
// too; use errors.Is(err, ErrTornRecord) to tell it apart.
func IsCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce)
}
