package wal

import (
	"errors"
	"fmt"
	"io"

	"github.com/walship/walship/wal/record"
)

// Reader reads the records of a sequence of closed segments in order. A
// segment that ends inside a record is reported as torn (ErrTornRecord),
// because nobody will finish writing it; for the segment still being
// written use LiveReader.
//
// After Next returns false with a corruption error, Resync goes on with the
// next intact record and SkipSegment with the next segment, so that damage
// does not hide the rest of the log.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	fsys FS
	dir  string
	segs []SegmentRef
	i    int   // index in segs of the segment being read
	skip int64 // offset to start at in segs[0]

	f    File
	s    *scanner
	rec  []byte
	err  error
	only func(record.Type) bool
}

// NewReader returns a Reader over segs of dir, starting at byte offset
// start of the first segment (0 for its beginning; otherwise a Position
// returned by an earlier Reader or LiveReader).
func NewReader(fsys FS, dir string, segs []SegmentRef, start int64) *Reader {
	return &Reader{fsys: fsys, dir: dir, segs: segs, skip: start, i: -1}
}

// OnlyTypes makes Next return only records of the given types. The others
// are still read and checked (a damaged one is reported), but not
// decompressed where their type can be read without (no compression,
// snappy): a reader after the series records of a log skips its samples
// at a fraction of the cost. Call it before the first Next.
func (r *Reader) OnlyTypes(types ...record.Type) {
	r.only = func(t record.Type) bool {
		for _, w := range types {
			if t == w {
				return true
			}
		}
		return false
	}
}

// OpenReader returns a Reader over every segment of dir.
func OpenReader(fsys FS, dir string) (*Reader, error) {
	segs, err := ListSegments(fsys, dir)
	if err != nil {
		return nil, err
	}
	return NewReader(fsys, dir, segs, 0), nil
}

// Next advances to the next record and reports whether there is one. It
// returns false at the end of the last segment or on an error.
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	for {
		if r.s == nil || r.f == nil {
			if !r.open(r.i + 1) {
				return false
			}
		}
		rec, err := r.s.next()
		if err == nil {
			r.rec = rec
			return true
		}
		if err != io.EOF {
			r.err = r.corruption(err)
			return false
		}
		if r.i == len(r.segs)-1 {
			return false
		}
		if !r.open(r.i + 1) {
			return false
		}
	}
}

// open closes the current segment and opens segs[i].
func (r *Reader) open(i int) bool {
	r.closeFile()
	if i >= len(r.segs) {
		return false
	}
	r.i = i
	f, err := r.fsys.Open(SegmentPath(r.dir, r.segs[i].Index))
	if err != nil {
		r.err = fmt.Errorf("open segment: %w", err)
		return false
	}
	var off int64
	if i == 0 && r.skip > 0 {
		off = r.skip
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			r.err = fmt.Errorf("seek segment %s to %d: %w", SegmentPath(r.dir, r.segs[i].Index), off, err)
			return false
		}
	}
	r.f = f
	if r.s == nil {
		r.s = newScanner(f, false, off)
		r.s.only = r.only
	} else {
		r.s.reset(f, off)
	}
	return true
}

func (r *Reader) corruption(err error) error {
	if errors.Is(err, ErrNoProgress) || !isFormatError(err) {
		return fmt.Errorf("read segment %s: %w", SegmentPath(r.dir, r.segs[r.i].Index), err)
	}
	return &CorruptionError{Dir: r.dir, Segment: r.segs[r.i].Index, Offset: r.s.lastEnd, Err: err}
}

// Record returns the current record. It stays valid until the next call
// to Next.
func (r *Reader) Record() []byte { return r.rec }

// Err returns the error that stopped Next, or nil at the clean end. Damage
// to the log is a *CorruptionError; anything else is an I/O error.
func (r *Reader) Err() error { return r.err }

// Segment returns the index of the segment being read, or -1 before the first Next.
func (r *Reader) Segment() int {
	if r.i < 0 || r.i >= len(r.segs) {
		return -1
	}
	return r.segs[r.i].Index
}

// Position returns where the current record ends: reading from there
// continues with the record after it.
func (r *Reader) Position() record.Position {
	if r.s == nil {
		return record.Position{Segment: r.Segment(), Offset: r.skip}
	}
	return record.Position{Segment: r.Segment(), Offset: r.s.lastEnd}
}

// RecordStart returns where the current record begins.
func (r *Reader) RecordStart() record.Position {
	if r.s == nil {
		return r.Position()
	}
	return record.Position{Segment: r.Segment(), Offset: r.s.lastStart}
}

// Resync makes Next go on after a corruption error, passing over the
// damaged bytes to the next intact record (see LiveReader.Resync); a
// segment that ends first is left for the next one. It reports false, and
// does nothing, when Err is not a *CorruptionError.
func (r *Reader) Resync() bool {
	var ce *CorruptionError
	if r.s == nil || !errors.As(r.err, &ce) {
		return false
	}
	r.s.resync(ce.Err)
	r.err = nil
	return true
}

// SkipSegment abandons the rest of the current segment after an error and
// moves to the next one. It reports whether there is a next segment.
func (r *Reader) SkipSegment() bool {
	if r.i+1 >= len(r.segs) {
		return false
	}
	r.err = nil
	r.closeFile()
	r.s = nil
	return true
}

// Close releases the open segment file.
func (r *Reader) Close() error {
	return r.closeFile()
}

func (r *Reader) closeFile() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// isFormatError reports whether err is one of the scanner's findings about
// the bytes (as opposed to an I/O error from the file).
func isFormatError(err error) bool {
	for _, s := range []error{ErrChecksum, ErrFragmentLength, ErrFragmentType, ErrFragmentOrder, ErrPadding, ErrTornRecord, ErrDecompress} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
