package wal

import (
	"io"
	"io/fs"
	"os"
)

// File is an open file of the log: a segment, a checkpoint segment or a
// position file.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	io.Closer
	// Sync commits the file's content to stable storage.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Stat describes the file.
	Stat() (fs.FileInfo, error)
}

// FS is everything the log does to a filesystem. OS is the real one; tests
// wrap it to inject errors such as ENOSPC, short writes or failed fsyncs.
type FS interface {
	// Create creates name, or truncates it if it exists, for writing.
	Create(name string) (File, error)
	// Open opens name for reading.
	Open(name string) (File, error)
	// OpenAppend opens an existing file for reading and writing, with
	// writes going to its end.
	OpenAppend(name string) (File, error)
	// ReadDir lists a directory, sorted by name.
	ReadDir(dir string) ([]fs.DirEntry, error)
	// MkdirAll creates dir and its parents.
	MkdirAll(dir string) error
	// Remove deletes a file or an empty directory.
	Remove(name string) error
	// RemoveAll deletes a path and everything under it.
	RemoveAll(name string) error
	// Rename moves oldname to newname, replacing newname.
	Rename(oldname, newname string) error
	// SyncDir commits a directory's entries (creations, renames, removals)
	// to stable storage.
	SyncDir(dir string) error
	// Stat describes name.
	Stat(name string) (fs.FileInfo, error)
}

// OS is the operating system's filesystem.
var OS FS = osFS{}

type osFS struct{}

func (osFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666)
}

func (osFS) Open(name string) (File, error) { return os.Open(name) }

func (osFS) OpenAppend(name string) (File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_APPEND, 0o666)
}

func (osFS) ReadDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }
func (osFS) MkdirAll(dir string) error                 { return os.MkdirAll(dir, 0o777) }
func (osFS) Remove(name string) error                  { return os.Remove(name) }
func (osFS) RemoveAll(name string) error               { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error      { return os.Rename(oldname, newname) }
func (osFS) Stat(name string) (fs.FileInfo, error)     { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
