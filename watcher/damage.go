package watcher

import (
	"errors"
	"fmt"
	"io"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// This file is what the watcher does about damage in the log: it reports
// each damaged place, has the reader go on at the next intact record
// (wal.LiveReader.Resync), and counts the bytes passed over once it is
// there. Only the records the damage reached are lost, not the rest of
// the segment.

// damage is a damaged place of the segment being read that the reader is
// passing over, and where the segment was last read again (reread).
type damage struct {
	open     bool
	at       int64 // the end of the last good record before it
	rereadAt int64 // -1 for nowhere yet
}

// reread has the reader read segment seg (open as f) again from the end
// of the last good record, once per place, after it met damage there, and
// reports whether it did. A writer whose write failed takes back what it
// wrote (wal.Writer.Log's rollback: the file is cut back) and writes
// other records in its place: a reader that read the first bytes, and
// reads on past them, sees damage that is not in the file. Damage met
// again at the same place is damage.
func (w *Watcher) reread(lr *wal.LiveReader, f wal.File, seg int, cause error) bool {
	var ce *wal.CorruptionError
	if !errors.As(cause, &ce) || ce.Offset == w.damage.rereadAt || w.damage.open {
		return false
	}
	if _, err := f.Seek(ce.Offset, io.SeekStart); err != nil {
		return false
	}
	w.damage.rereadAt = ce.Offset
	lr.Reset(f, seg, ce.Offset)
	return true
}

// passDamage reports damage in segment seg and has the reader go on at
// the next intact record; any other error ends the watcher.
func (w *Watcher) passDamage(lr *wal.LiveReader, seg int, cause error) error {
	var ce *wal.CorruptionError
	if !errors.As(cause, &ce) || !lr.Resync() {
		return fmt.Errorf("watcher: read segment %d: %w", seg, cause)
	}
	w.m.corruptions.Inc()
	w.log.Error("WAL segment is damaged: reading on at the next intact record", "segment", seg, "offset", ce.Offset, "err", ce.Err)
	if !w.damage.open {
		w.damage = damage{open: true, at: ce.Offset}
	}
	return nil
}

// damageEnds counts the bytes of segment seg passed over since the open
// damage, up to end: where the next intact record begins, or the end of
// the segment.
func (w *Watcher) damageEnds(seg int, end int64) {
	w.damage.open = false
	skipped := end - w.damage.at
	w.m.skippedCorrupt.Add(float64(skipped))
	w.log.Warn("Passed over the damaged bytes of a WAL segment", "segment", seg, "from", w.damage.at, "to", end, "bytes", skipped)
}

// damagedToTheEnd ends the open damage of segment seg, of size bytes, at
// its end: everything in it is read or passed over.
func (w *Watcher) damagedToTheEnd(seg int, size int64) {
	w.damageEnds(seg, size)
	if w.readPos.Less(record.Position{Segment: seg + 1}) {
		w.readPos = record.Position{Segment: seg + 1}
	}
}

// readIntact calls each for every record r can read, passing over damage
// (wal.Reader.Resync) and telling damaged about each damaged place. It
// returns the first error of each or an I/O error.
func readIntact(r *wal.Reader, each func(rec []byte) error, damaged func(err error)) error {
	for {
		for r.Next() {
			if err := each(r.Record()); err != nil {
				return err
			}
		}
		err := r.Err()
		if err == nil {
			return nil
		}
		if !r.Resync() {
			return err
		}
		damaged(err)
	}
}
