package watcher

import (
	"io"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// This file bounds what the watcher reads of the segment being written by
// what its writer committed (Options.Committed): a write that failed is
// cut back and written over, and is never read.

// committedFile is a segment file read no further than its writer
// committed (Options.Committed).
type committedFile struct {
	wal.File
	seg       int
	off       int64 // the file's read offset
	committed func() record.Position
}

// committedOnly returns f, segment seg, limited to what its writer
// committed when Options.Committed is set.
func (w *Watcher) committedOnly(f wal.File, seg int) wal.File {
	if w.opts.Committed == nil {
		return f
	}
	return &committedFile{File: f, seg: seg, committed: w.opts.Committed}
}

func (c *committedFile) Read(p []byte) (int, error) {
	switch at := c.committed(); {
	case at.Segment < c.seg:
		return 0, io.EOF // nothing of it committed yet
	case at.Segment == c.seg:
		if c.off >= at.Offset {
			return 0, io.EOF
		}
		p = p[:min(int64(len(p)), at.Offset-c.off)]
	}
	n, err := c.File.Read(p)
	c.off += int64(n)
	return n, err
}

func (c *committedFile) Seek(offset int64, whence int) (int64, error) {
	off, err := c.File.Seek(offset, whence)
	if err == nil {
		c.off = off
	}
	return off, err
}
