package wal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
)

// BrokenSuffix is appended to a segment's name for the copy of the bytes
// Repair cut from it. Such files are not segments: readers ignore them.
const BrokenSuffix = ".broken"

// RepairReport says what Repair removed from a log.
type RepairReport struct {
	// Segment and Offset are where the log now ends.
	Segment int
	Offset  int64
	// BytesDropped counts the bytes cut from Segment; they are kept in
	// BrokenFile unless there were none.
	BytesDropped int64
	BrokenFile   string
	// SegmentsDeleted lists the later segments that were removed whole.
	SegmentsDeleted []int
}

// Repair cuts a damaged log back to its last good record, as Prometheus
// does before it writes again: every segment after the damaged one is
// deleted, and the damaged one is truncated at the corruption's offset and
// padded to its page end. Unlike upstream it keeps the cut bytes in a
// ".broken" file next to the segment and leaves no gap in segment numbers if
// it is interrupted (later segments go first, highest index first).
//
// cerr must be a *CorruptionError (or wrap one) with a segment index.
func Repair(fsys FS, dir string, cerr error) (RepairReport, error) {
	var ce *CorruptionError
	if !errors.As(cerr, &ce) || ce.Segment < 0 {
		return RepairReport{}, fmt.Errorf("wal: cannot repair %v: not a corruption with a segment", cerr)
	}
	rep := RepairReport{Segment: ce.Segment, Offset: ce.Offset}
	refs, err := ListSegments(fsys, dir)
	if err != nil {
		return rep, err
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].Index > refs[b].Index })
	for _, r := range refs {
		if r.Index <= ce.Segment {
			break
		}
		if err := fsys.Remove(filepath.Join(dir, r.Name)); err != nil {
			return rep, fmt.Errorf("repair: delete segment: %w", err)
		}
		rep.SegmentsDeleted = append(rep.SegmentsDeleted, r.Index)
	}
	if err := cutSegment(fsys, dir, ce.Segment, ce.Offset, &rep); err != nil {
		return rep, err
	}
	if err := fsys.SyncDir(dir); err != nil {
		return rep, fmt.Errorf("repair: sync directory: %w", err)
	}
	return rep, nil
}

// cutSegment keeps segment i's bytes from off on in a .broken file, then
// truncates the segment at off and pads its last page with zeros.
func cutSegment(fsys FS, dir string, i int, off int64, rep *RepairReport) error {
	path := SegmentPath(dir, i)
	f, err := fsys.OpenAppend(path)
	if err != nil {
		return fmt.Errorf("repair: open segment: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("repair: stat segment: %w", err)
	}
	size := info.Size()
	if off > size {
		off = size
	}
	if rest := size - off; rest > 0 {
		rep.BytesDropped = rest
		rep.BrokenFile = path + BrokenSuffix
		if err := saveTail(fsys, f, off, rest, rep.BrokenFile); err != nil {
			return err
		}
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("repair: truncate segment: %w", err)
	}
	if pad := (PageSize - off%PageSize) % PageSize; pad > 0 {
		if _, err := f.Write(make([]byte, pad)); err != nil {
			return fmt.Errorf("repair: pad segment: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("repair: sync segment: %w", err)
	}
	return nil
}

func saveTail(fsys FS, src File, off, n int64, path string) error {
	dst, err := fsys.Create(path)
	if err != nil {
		return fmt.Errorf("repair: keep damaged bytes: %w", err)
	}
	_, err = io.Copy(dst, io.NewSectionReader(src, off, n))
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("repair: keep damaged bytes: %w", err)
	}
	return nil
}

// Repair cuts the log back to its last good record (see the Repair
// function) and continues writing in a new segment after the repaired one.
// It is what a caller does when replaying the log it is about to append to
// finds damage.
func (w *Writer) Repair(cerr error) (RepairReport, error) {
	if w.closed {
		return RepairReport{}, ErrClosed
	}
	if err := w.seg.Close(); err != nil {
		w.opts.Logger.Warn("Closing active segment before repair failed", "err", err)
	}
	rep, err := Repair(w.opts.FS, w.dir, cerr)
	if err != nil {
		w.closed = true
		return rep, err
	}
	w.broken = nil
	if err := w.createSegment(rep.Segment + 1); err != nil {
		w.closed = true
		return rep, err
	}
	w.opts.Logger.Warn("Repaired write-ahead log", "segment", rep.Segment, "offset", rep.Offset,
		"bytes_dropped", rep.BytesDropped, "segments_deleted", len(rep.SegmentsDeleted), "kept_in", rep.BrokenFile)
	return rep, nil
}
