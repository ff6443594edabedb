package storage

import (
	"fmt"
	"path/filepath"

	"github.com/walship/walship/wal"
)

// The disk budget (Options.MaxWALBytes).
//
// The DB knows the size of its log directory exactly after Open and after
// every truncation (it lists the files), and in between adds what each
// commit wrote (the writer's position before and after, plus the padding of
// a finished segment). When a commit takes the estimate over the budget it
// wakes Run, which checkpoints and deletes the oldest segments until the
// directory fits, acknowledged or not. So a fast-growing log with a dead
// endpoint is cut back within one segment or a sixteenth of the budget of
// growth, not at the next periodic truncation. To avoid a checkpoint per
// commit when nothing more can be deleted (only the segment being written
// is left, or the budget is smaller than a segment), a commit wakes Run again
// only after a new segment was started or another sixteenth of the budget
// was written since the last wake-up.

// sizeAccount tracks the size of the log directory. Guarded by DB.mu.
type sizeAccount struct {
	bytes        int64 // measured at the last truncation plus what commits wrote since
	sinceTrigger int64 // bytes written since the last wake-up of Run (or measurement)
	segment      int   // writer's segment at the last wake-up (or measurement)
}

func (a *sizeAccount) reset(bytes int64, segment int) {
	a.bytes, a.sinceTrigger, a.segment = bytes, 0, segment
}

func (a *sizeAccount) add(n int64) {
	a.bytes += n
	a.sinceTrigger += n
}

// overBudget reports whether the log is over limit and enough has happened
// since the last time it said so; it then starts counting anew.
func (a *sizeAccount) overBudget(limit int64, segment int) bool {
	if limit <= 0 || a.bytes <= limit {
		return false
	}
	if segment == a.segment && a.sinceTrigger < max(limit/16, wal.PageSize) {
		return false
	}
	a.sinceTrigger, a.segment = 0, segment
	return true
}

// segmentSize is one segment file and its size.
type segmentSize struct {
	index int
	size  int64
}

// dirUsage is what the log directory holds: its segments in order, and the
// bytes of everything else (checkpoints, .broken files).
type dirUsage struct {
	segments   []segmentSize
	other      int64
	checkpoint int64 // bytes of the newest checkpoint (part of other)
}

func (u dirUsage) total() int64 {
	t := u.other
	for _, s := range u.segments {
		t += s.size
	}
	return t
}

// usage measures the log directory.
func (db *DB) usage() (dirUsage, error) {
	var u dirUsage
	entries, err := db.opts.FS.ReadDir(db.dir)
	if err != nil {
		return u, fmt.Errorf("list wal directory: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			n := treeSize(db.opts.FS, filepath.Join(db.dir, e.Name()))
			u.other += n
			if _, ok := wal.ParseCheckpointName(e.Name()); ok {
				u.checkpoint = n // ReadDir sorts by name: the newest comes last
			}
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if i, ok := wal.ParseSegmentName(e.Name()); ok {
			u.segments = append(u.segments, segmentSize{i, info.Size()})
		} else {
			u.other += info.Size()
		}
	}
	return u, nil
}

// measure returns the size of the log directory.
func (db *DB) measure() (int64, error) {
	u, err := db.usage()
	return u.total(), err
}

func treeSize(fsys wal.FS, dir string) int64 {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if e.IsDir() {
			n += treeSize(fsys, filepath.Join(dir, e.Name()))
			continue
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// planTruncation chooses the last segment to checkpoint and delete, or -1
// for none. Segments before protected (the lowest acknowledged segment) are
// deleted; the active segment and later ones never are. If what remains
// still exceeds maxBytes (when positive), older protected segments are
// deleted too, oldest first, until it fits; forced says so. The new
// checkpoint is expected to be as large as the newest one, and at least a
// page.
func planTruncation(u dirUsage, active, protected int, maxBytes int64) (last int, forced bool) {
	last = -1
	remaining := u.total() + max(0, wal.PageSize-u.checkpoint)
	for _, s := range u.segments {
		if s.index >= active {
			break
		}
		if s.index < protected {
			last = s.index
			remaining -= s.size
			continue
		}
		if maxBytes <= 0 || remaining <= maxBytes {
			break
		}
		last, forced = s.index, true
		remaining -= s.size
	}
	return last, forced
}
