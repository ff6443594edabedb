package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/walship/walship/wal/record"
)

// page is the page being filled. Bytes buf[:flushed] are in the file;
// buf[flushed:alloc] are not yet.
type page struct {
	alloc, flushed int
	buf            [PageSize]byte
}

func (p *page) full() bool { return PageSize-p.alloc < HeaderSize }

// Writer appends records to a log directory, in the format Prometheus 3.x
// writes: it produces the same bytes as upstream's writer for the same
// records and options. Each Open starts a new segment after the last one
// present, as upstream does.
//
// Log does not fsync; the previous segment is synced when a new one starts,
// and the active one on Sync and Close. A failed write takes back the
// records of that call, so the log never holds a half-written record
// (upstream leaves one, prometheus#13027).
//
// A Writer is not safe for concurrent use.
type Writer struct {
	dir  string
	opts Options

	seg       File
	segIndex  int
	segSize   int64 // bytes of the active segment in the file
	donePages int   // whole pages in the active segment

	page   page
	cbuf   []byte
	closed bool
	broken error // a failed write that could not be rolled back

	metrics *writerMetrics
}

// Open creates dir if needed and returns a Writer that appends to a new
// segment after the last one in dir.
func Open(dir string, opts Options) (*Writer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := opts.FS.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("create wal directory: %w", err)
	}
	_, last, err := Segments(opts.FS, dir)
	if err != nil {
		return nil, err
	}
	w := &Writer{dir: dir, opts: opts, metrics: newWriterMetrics(opts.Registerer, dir, opts.FS, opts.Compression)}
	if err := w.createSegment(last + 1); err != nil {
		return nil, err
	}
	return w, nil
}

// Dir returns the directory the Writer writes to.
func (w *Writer) Dir() string { return w.dir }

// Segment returns the index of the active segment.
func (w *Writer) Segment() int { return w.segIndex }

// Compression returns the compression the Writer applies.
func (w *Writer) Compression() Compression { return w.opts.Compression }

// Position returns where the next record will be written (unless it does
// not fit and starts a new segment).
func (w *Writer) Position() record.Position {
	return record.Position{Segment: w.segIndex, Offset: w.segSize + int64(w.page.alloc-w.page.flushed)}
}

func (w *Writer) pagesPerSegment() int { return w.opts.SegmentSize / PageSize }

func (w *Writer) createSegment(i int) error {
	f, err := w.newSegmentFile(i)
	if err != nil {
		return err
	}
	w.install(f, i)
	return nil
}

// newSegmentFile creates the file of segment i and makes its directory
// entry durable.
func (w *Writer) newSegmentFile(i int) (File, error) {
	f, err := w.opts.FS.Create(SegmentPath(w.dir, i))
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := w.opts.FS.SyncDir(w.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync wal directory: %w", err)
	}
	return f, nil
}

// install makes f, the new empty file of segment i, the active segment.
func (w *Writer) install(f File, i int) {
	w.seg, w.segIndex, w.segSize, w.donePages = f, i, 0, 0
	w.page.alloc, w.page.flushed = 0, 0
	clear(w.page.buf[:])
	w.metrics.currentSegment.Set(float64(i))
}

// Log appends records in order and writes them to the file (without
// fsync). It is all or nothing: on error, whatever the call wrote is
// removed again (segments it started included) and the log is as before
// the call.
func (w *Writer) Log(recs ...[]byte) error {
	if w.closed {
		return ErrClosed
	}
	if w.broken != nil {
		return w.broken
	}
	snap := w.snapshot()
	for i, rec := range recs {
		enc, flag, err := w.encode(rec)
		if err != nil {
			return w.rollback(snap, err)
		}
		if w.mustRotate(len(enc)) {
			err = w.nextSegment()
		}
		if err == nil {
			err = w.writeFragments(enc, flag)
		}
		if err == nil && i == len(recs)-1 && w.page.alloc > w.page.flushed {
			err = w.flushPage(false)
		}
		if err != nil {
			w.metrics.writesFailed.Inc()
			return w.rollback(snap, err)
		}
	}
	return nil
}

type writerState struct {
	segIndex, donePages, alloc int
	segSize                    int64
}

func (w *Writer) snapshot() writerState {
	return writerState{segIndex: w.segIndex, donePages: w.donePages, alloc: w.page.alloc, segSize: w.segSize}
}

// rollback returns the log to the state of snap, taken at the start of the
// failed call when everything of the page was in the file: segments the call
// started are deleted, and the segment it started in is cut back to its
// size then. If that fails too the Writer refuses further writes.
func (w *Writer) rollback(snap writerState, cause error) error {
	if err := w.restore(snap); err != nil {
		w.broken = fmt.Errorf("%w: cannot remove partly written records (%v) after: %w", ErrBroken, err, cause)
		return w.broken
	}
	return cause
}

func (w *Writer) restore(snap writerState) error {
	if w.segIndex != snap.segIndex {
		w.seg.Close()
		for i := w.segIndex; i > snap.segIndex; i-- {
			if err := w.opts.FS.Remove(SegmentPath(w.dir, i)); err != nil {
				return err
			}
		}
		f, err := w.opts.FS.OpenAppend(SegmentPath(w.dir, snap.segIndex))
		if err != nil {
			return err
		}
		w.seg, w.segIndex = f, snap.segIndex
		w.segSize = -1 // unknown (padded when the call moved on): cut below
		w.metrics.currentSegment.Set(float64(snap.segIndex))
	}
	if w.segSize != snap.segSize {
		if err := w.seg.Truncate(snap.segSize); err != nil {
			return err
		}
		if _, err := w.seg.Seek(snap.segSize, 0); err != nil {
			return err
		}
	}
	w.segSize, w.donePages = snap.segSize, snap.donePages
	w.page.alloc, w.page.flushed = snap.alloc, snap.alloc
	clear(w.page.buf[snap.alloc:])
	return nil
}

// encode compresses rec when that makes it smaller and returns the bytes
// to write with the header flag that says how.
func (w *Writer) encode(rec []byte) ([]byte, byte, error) {
	if w.opts.Compression == None {
		return rec, 0, nil
	}
	c, err := compress(w.opts.Compression, w.cbuf, rec)
	if err != nil {
		return nil, 0, err
	}
	w.cbuf = c[:0]
	saved := len(rec) - len(c)
	if saved <= 0 {
		return rec, 0, nil
	}
	w.metrics.bytesSaved.Add(float64(saved))
	if w.opts.Compression == Zstd {
		return c, zstdFlag, nil
	}
	return c, snappyFlag, nil
}

// mustRotate reports whether a record of n bytes does not fit in the rest
// of the active segment, which already holds something. (A record larger
// than a whole segment goes into a fresh one, which then grows beyond the
// segment size; upstream rotates even out of an empty segment for it.)
func (w *Writer) mustRotate(n int) bool {
	left := PageSize - w.page.alloc - HeaderSize
	left += MaxFragmentPayload * (w.pagesPerSegment() - w.donePages - 1)
	return n > left && (w.donePages > 0 || w.page.alloc > 0)
}

// writeFragments cuts enc into fragments that fill the active page and the
// pages after it, writing each page that fills up.
func (w *Writer) writeFragments(enc []byte, flag byte) error {
	for i := 0; i == 0 || len(enc) > 0; i++ {
		p := &w.page
		n := min(len(enc), PageSize-p.alloc-HeaderSize)
		typ := fragMiddle
		switch {
		case i == 0 && n == len(enc):
			typ = fragFull
		case n == len(enc):
			typ = fragLast
		case i == 0:
			typ = fragFirst
		}
		b := p.buf[p.alloc:]
		b[0] = typ | flag
		binary.BigEndian.PutUint16(b[1:], uint16(n))
		binary.BigEndian.PutUint32(b[3:], crc32.Checksum(enc[:n], castagnoli))
		copy(b[HeaderSize:], enc[:n])
		p.alloc += HeaderSize + n
		w.metrics.fragmentWrites.Inc()
		w.metrics.fragmentBytes.Add(float64(HeaderSize + n))
		if p.full() {
			if err := w.flushPage(true); err != nil {
				return err
			}
		}
		enc = enc[n:]
	}
	return nil
}

// flushPage writes the unwritten part of the page. With pad, or when the
// page is full, it writes the page out to its end in zeros and starts a new one.
func (w *Writer) flushPage(pad bool) error {
	p := &w.page
	end := p.alloc
	if pad || p.full() {
		end = PageSize
	}
	w.metrics.pageFlushes.Inc()
	n, err := w.seg.Write(p.buf[p.flushed:end])
	w.segSize += int64(n)
	p.flushed += n
	if err != nil {
		return fmt.Errorf("write segment %s: %w", SegmentPath(w.dir, w.segIndex), err)
	}
	if end == PageSize {
		clear(p.buf[:])
		p.alloc, p.flushed = 0, 0
		w.donePages++
		w.metrics.pagesCompleted.Inc()
	}
	return nil
}

// NextSegment pads and syncs the active segment and starts the next one.
// It returns the new segment's index. A failure before the sync (the
// padding not written, the new file not created) is taken back as Log
// takes back a failed call: the active segment stays active, as it was.
// A failed sync leaves the Writer refusing writes (ErrBroken; see
// Recover).
func (w *Writer) NextSegment() (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.broken != nil {
		return 0, w.broken
	}
	snap := w.snapshot()
	if err := w.nextSegment(); err != nil {
		if errors.Is(err, ErrBroken) {
			return 0, err
		}
		return 0, w.rollback(snap, fmt.Errorf("start segment %d: %w", w.segIndex+1, err))
	}
	return w.segIndex, nil
}

// nextSegment pads the active segment, creates the next one, then syncs
// and closes the old one. Until the new file exists the old one stays
// active, so a failure leaves a state that rollback can undo.
func (w *Writer) nextSegment() error {
	if w.page.alloc > 0 {
		if err := w.flushPage(true); err != nil {
			return err
		}
	}
	next, err := w.newSegmentFile(w.segIndex + 1)
	if err != nil {
		return err
	}
	if err := w.fsync(); err != nil {
		next.Close()
		w.opts.FS.Remove(SegmentPath(w.dir, w.segIndex+1))
		return err
	}
	prev := w.seg
	w.install(next, w.segIndex+1)
	if err := prev.Close(); err != nil {
		// Its content is synced; a failed close loses nothing.
		w.opts.Logger.Warn("Closing finished segment failed", "segment", w.segIndex-1, "err", err)
	}
	return nil
}

// finishSegment pads the last page, syncs and closes the active segment.
func (w *Writer) finishSegment() error {
	if w.page.alloc > 0 {
		if err := w.flushPage(true); err != nil {
			return err
		}
	}
	if err := w.fsync(); err != nil {
		return err
	}
	return w.seg.Close()
}

func (w *Writer) fsync() error {
	start := time.Now()
	err := w.seg.Sync()
	w.metrics.fsyncDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// what is in the file is unknown, so stop writing.
		err = fmt.Errorf("%w: sync segment %s: %w", ErrBroken, SegmentPath(w.dir, w.segIndex), err)
		w.broken = err
		return err
	}
	return nil
}

// Recover makes a Writer that refuses writes (ErrBroken) usable again,
// and reports whether it had to. The active segment is left as it is:
// what it holds after the failure is unknown (readers pass over damage),
// and records logged into it before the failure may be missing, so the
// caller logs again what later records depend on (series records). A
// new segment is started after it; if that fails, the Writer stays
// broken and Recover may be called again.
func (w *Writer) Recover() (bool, error) {
	if w.closed {
		return false, ErrClosed
	}
	if w.broken == nil {
		return false, nil
	}
	w.seg.Close() // its content is unknown already; a second close fails harmlessly
	f, err := w.newSegmentFile(w.segIndex + 1)
	if err != nil {
		return false, err
	}
	w.install(f, w.segIndex+1)
	w.broken = nil
	return true, nil
}

// Sync writes out everything logged and fsyncs the active segment.
func (w *Writer) Sync() error {
	if w.closed {
		return ErrClosed
	}
	if w.page.alloc > w.page.flushed {
		if err := w.flushPage(false); err != nil {
			return err
		}
	}
	return w.fsync()
}

// Truncate deletes every segment with an index below i. The active segment
// is never deleted.
func (w *Writer) Truncate(i int) error {
	refs, err := ListSegments(w.opts.FS, w.dir)
	if err != nil {
		return err
	}
	w.metrics.truncations.Inc()
	for _, r := range refs {
		if r.Index >= i || r.Index >= w.segIndex {
			break
		}
		if err := w.opts.FS.Remove(SegmentPath(w.dir, r.Index)); err != nil {
			w.metrics.truncationsFailed.Inc()
			return fmt.Errorf("truncate wal: %w", err)
		}
	}
	return nil
}

// Close pads the last page, syncs and closes the active segment. The log
// it leaves is complete: a Reader reads it to the end without error.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if w.broken != nil {
		err := w.seg.Close()
		return errors.Join(w.broken, err)
	}
	return w.finishSegment()
}
