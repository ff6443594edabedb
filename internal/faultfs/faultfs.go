// Package faultfs wraps a wal.FS so tests can make chosen operations fail:
// a write that stops short with ENOSPC, a failed fsync, a rename that does
// not happen. It is for tests only.
package faultfs

import (
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/walship/walship/wal"
)

// Op is a kind of filesystem operation.
type Op int

// The operations a Rule can match.
const (
	OpWrite Op = iota
	OpSync
	OpTruncate
	OpCreate
	OpRename
	OpRemove
	OpSyncDir
)

// Rule makes matching operations fail. A zero Path matches every path;
// otherwise Path is matched against the base name with filepath.Match.
type Rule struct {
	Op   Op
	Path string
	// After lets this many matching operations succeed before failing.
	After int
	// Times is how many operations fail after that; 0 means all of them.
	Times int
	// Err is the error returned; nil means ENOSPC.
	Err error
	// Partial, for writes, is how many bytes are written before the error.
	Partial int
}

// FS is a wal.FS that applies Rules to an underlying FS. It is safe for
// concurrent use.
type FS struct {
	wal.FS
	mu    sync.Mutex
	rules []*ruleState
}

type ruleState struct {
	Rule
	seen, failed int
}

// New wraps inner.
func New(inner wal.FS) *FS { return &FS{FS: inner} }

// Add installs a rule.
func (f *FS) Add(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &ruleState{Rule: r})
}

// Clear removes every rule.
func (f *FS) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// check returns the rule that makes this operation fail, if any.
func (f *FS) check(op Op, path string) *Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if r.Op != op {
			continue
		}
		if r.Path != "" {
			if ok, _ := filepath.Match(r.Path, filepath.Base(path)); !ok {
				continue
			}
		}
		r.seen++
		if r.seen <= r.After || (r.Times > 0 && r.failed >= r.Times) {
			continue
		}
		r.failed++
		rule := r.Rule
		if rule.Err == nil {
			rule.Err = syscall.ENOSPC
		}
		return &rule
	}
	return nil
}

func (f *FS) pathErr(op string, path string, r *Rule) error {
	return &fs.PathError{Op: op, Path: path, Err: r.Err}
}

// Create creates a file whose operations are checked against the rules.
func (f *FS) Create(name string) (wal.File, error) {
	if r := f.check(OpCreate, name); r != nil {
		return nil, f.pathErr("create", name, r)
	}
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

// OpenAppend opens a file whose operations are checked against the rules.
func (f *FS) OpenAppend(name string) (wal.File, error) {
	file, err := f.FS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

// Rename fails when a rule says so.
func (f *FS) Rename(oldname, newname string) error {
	if r := f.check(OpRename, newname); r != nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: r.Err}
	}
	return f.FS.Rename(oldname, newname)
}

// Remove fails when a rule says so.
func (f *FS) Remove(name string) error {
	if r := f.check(OpRemove, name); r != nil {
		return f.pathErr("remove", name, r)
	}
	return f.FS.Remove(name)
}

// SyncDir fails when a rule says so.
func (f *FS) SyncDir(dir string) error {
	if r := f.check(OpSyncDir, dir); r != nil {
		return f.pathErr("sync", dir, r)
	}
	return f.FS.SyncDir(dir)
}

type faultFile struct {
	wal.File
	fs   *FS
	name string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if r := f.fs.check(OpWrite, f.name); r != nil {
		n := min(r.Partial, len(p))
		if n > 0 {
			if _, err := f.File.Write(p[:n]); err != nil {
				return 0, err
			}
		}
		return n, f.fs.pathErr("write", f.name, r)
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if r := f.fs.check(OpSync, f.name); r != nil {
		return f.fs.pathErr("sync", f.name, r)
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if r := f.fs.check(OpTruncate, f.name); r != nil {
		return f.fs.pathErr("truncate", f.name, r)
	}
	return f.File.Truncate(size)
}
