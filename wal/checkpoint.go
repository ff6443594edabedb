package wal

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// A checkpoint is a directory "checkpoint.NNNNNNNN" next to the segments,
// holding a log of its own (segments 00000000, ...) with what was kept of
// segments up to and including NNNNNNNN when they were truncated. It is
// built in "checkpoint.NNNNNNNN.tmp" and renamed into place, so a
// checkpoint directory is always complete.
const (
	checkpointPrefix = "checkpoint."
	tmpSuffix        = ".tmp"
)

// ErrNoCheckpoint is returned by LastCheckpoint when a directory has none.
var ErrNoCheckpoint = errors.New("wal: no checkpoint")

// CheckpointName returns the directory name of the checkpoint covering
// segments up to i.
func CheckpointName(i int) string { return fmt.Sprintf("%s%08d", checkpointPrefix, i) }

// ParseCheckpointName returns the segment index a checkpoint directory name stands for.
func ParseCheckpointName(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, checkpointPrefix)
	if !ok {
		return 0, false
	}
	return ParseSegmentName(rest)
}

// CheckpointRef names one checkpoint directory.
type CheckpointRef struct {
	Index int
	Name  string
}

// ListCheckpoints returns the complete checkpoints of dir sorted by index.
func ListCheckpoints(fsys FS, dir string) ([]CheckpointRef, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var refs []CheckpointRef
	for _, e := range entries {
		i, ok := ParseCheckpointName(e.Name())
		if !ok {
			continue
		}
		if !e.IsDir() {
			return nil, fmt.Errorf("wal: checkpoint %s is not a directory", filepath.Join(dir, e.Name()))
		}
		refs = append(refs, CheckpointRef{Index: i, Name: e.Name()})
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].Index < refs[b].Index })
	return refs, nil
}

// LastCheckpoint returns the newest checkpoint of dir, or ErrNoCheckpoint.
func LastCheckpoint(fsys FS, dir string) (CheckpointRef, error) {
	refs, err := ListCheckpoints(fsys, dir)
	if err != nil {
		return CheckpointRef{}, err
	}
	if len(refs) == 0 {
		return CheckpointRef{}, ErrNoCheckpoint
	}
	return refs[len(refs)-1], nil
}

// DeleteCheckpoints removes the checkpoints of dir with an index below maxIndex.
func DeleteCheckpoints(fsys FS, dir string, maxIndex int) error {
	refs, err := ListCheckpoints(fsys, dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range refs {
		if r.Index >= maxIndex {
			break
		}
		if err := fsys.RemoveAll(filepath.Join(dir, r.Name)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete checkpoints: %w", err)
	}
	return nil
}

// DeleteTempCheckpoints removes unfinished checkpoints ("checkpoint.*.tmp")
// left by an interrupted run.
func DeleteTempCheckpoints(fsys FS, dir string) error {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), checkpointPrefix) && strings.HasSuffix(e.Name(), tmpSuffix) {
			if err := fsys.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("delete temporary checkpoint: %w", err)
			}
		}
	}
	return nil
}

// CheckpointWriter builds one checkpoint. Records go in with Log; Commit
// makes the checkpoint visible atomically, Abort throws it away.
//
// A CheckpointWriter is not safe for concurrent use.
type CheckpointWriter struct {
	fsys       FS
	dir        string // the log directory
	index      int
	tmp, final string
	w          *Writer
}

// CreateCheckpoint starts the checkpoint of dir covering segments up to
// index. opts set the compression and segment size of the checkpoint's own
// log (use the log's own); stale temporary checkpoints are removed first.
func CreateCheckpoint(dir string, index int, opts Options) (*CheckpointWriter, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := DeleteTempCheckpoints(o.FS, dir); err != nil {
		return nil, err
	}
	c := &CheckpointWriter{
		fsys:  o.FS,
		dir:   dir,
		index: index,
		final: filepath.Join(dir, CheckpointName(index)),
	}
	c.tmp = c.final + tmpSuffix
	o.Registerer = nil
	if c.w, err = Open(c.tmp, o); err != nil {
		return nil, fmt.Errorf("create checkpoint: %w", err)
	}
	return c, nil
}

// Log appends records to the checkpoint.
func (c *CheckpointWriter) Log(recs ...[]byte) error { return c.w.Log(recs...) }

// Commit closes the checkpoint's log, syncs it, and renames it into place,
// replacing an older checkpoint of the same index.
func (c *CheckpointWriter) Commit() error {
	if err := c.w.Close(); err != nil {
		c.Abort()
		return fmt.Errorf("close checkpoint: %w", err)
	}
	if err := c.fsys.SyncDir(c.tmp); err != nil {
		c.Abort()
		return fmt.Errorf("sync checkpoint: %w", err)
	}
	if err := c.fsys.RemoveAll(c.final); err != nil {
		c.Abort()
		return fmt.Errorf("replace checkpoint: %w", err)
	}
	if err := c.fsys.Rename(c.tmp, c.final); err != nil {
		c.Abort()
		return fmt.Errorf("rename checkpoint: %w", err)
	}
	if err := c.fsys.SyncDir(c.dir); err != nil {
		return fmt.Errorf("sync wal directory: %w", err)
	}
	return nil
}

// Abort discards the unfinished checkpoint.
func (c *CheckpointWriter) Abort() {
	if !c.w.closed {
		c.w.Close()
	}
	c.fsys.RemoveAll(c.tmp)
}

// Dir returns the directory the committed checkpoint will have.
func (c *CheckpointWriter) Dir() string { return c.final }
