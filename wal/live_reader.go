package wal

import (
	"errors"
	"io"

	"github.com/walship/walship/wal/record"
)

// LiveReader reads the records of a segment that is still being written.
// When the data ends, Next returns false and Err returns io.EOF: that means
// "nothing more yet", not corruption. Call Next again when the writer has
// written more (the incomplete bytes stay buffered and nothing is lost).
// Any other error is final.
//
// A LiveReader is not safe for concurrent use.
type LiveReader struct {
	segment int
	s       *scanner
	rec     []byte
	err     error
}

// NewLiveReader returns a LiveReader over src, the file of segment index
// segment, whose next byte is at offset in that segment (0 for a file read
// from its start).
func NewLiveReader(src io.Reader, segment int, offset int64) *LiveReader {
	return &LiveReader{segment: segment, s: newScanner(src, true, offset)}
}

// Reset makes l read src, the file of segment index segment positioned at
// offset, keeping its buffers: a watcher moving from one segment to the
// next reuses one LiveReader.
func (l *LiveReader) Reset(src io.Reader, segment int, offset int64) {
	l.segment, l.rec, l.err = segment, nil, nil
	l.s.reset(src, offset)
}

// Next advances to the next complete record and reports whether there is one.
func (l *LiveReader) Next() bool {
	if l.err != nil && l.err != io.EOF {
		return false
	}
	rec, err := l.s.next()
	if err != nil {
		if err != io.EOF && isFormatError(err) {
			err = &CorruptionError{Segment: l.segment, Offset: l.s.lastEnd, Err: err}
		}
		l.err = err
		return false
	}
	l.err, l.rec = nil, rec
	return true
}

// Resync makes Next go on after Err returned a *CorruptionError: the
// damaged record, and what follows it up to the next intact record, are
// passed over. Where a fragment header comes next is unknown after
// damaged bytes, so the next intact record is the first that begins in a
// later page whose start is intact (a writer begins every page with a
// fragment header); after a record that does not decompress, it is the
// next one. No record is made up: a fragment that continues a record is
// never taken for the start of one. Position stays at the end of the
// last good record until Next returns one: RecordStart then says where
// the damage ended. Resync reports false, and does nothing, when Err is
// not a *CorruptionError.
func (l *LiveReader) Resync() bool {
	var ce *CorruptionError
	if !errors.As(l.err, &ce) {
		return false
	}
	l.s.resync(ce.Err)
	l.err = nil
	return true
}

// Record returns the current record. It stays valid until the next call to Next.
func (l *LiveReader) Record() []byte { return l.rec }

// Err returns io.EOF when the reader has consumed everything written so
// far, a *CorruptionError when the segment is damaged, or an I/O error.
func (l *LiveReader) Err() error { return l.err }

// Offset returns how many bytes of the segment the reader has consumed,
// including a partly read record.
func (l *LiveReader) Offset() int64 { return l.s.off }

// Position returns where the current record ends: a reader started there
// continues with the record after it.
func (l *LiveReader) Position() record.Position {
	return record.Position{Segment: l.segment, Offset: l.s.lastEnd}
}

// RecordStart returns where the current record begins.
func (l *LiveReader) RecordStart() record.Position {
	return record.Position{Segment: l.segment, Offset: l.s.lastStart}
}

// Spans returns how many fragments crossed a page boundary. Prometheus's
// writer never produces them, but its reader tolerates them, and so does this one.
func (l *LiveReader) Spans() int { return l.s.spans }
