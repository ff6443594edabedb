package reliability

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// This file is the fs-faults scenario's file system: the agent's data
// directory is a FUSE passthrough of the harness's own over a real
// directory, which fails the operations the harness switches on (EIO on
// writes and fsyncs of open files, EROFS on changing the directory's
// entries, EIO on renames) in the running process, and passes everything
// else through.

// ErrNoFUSE means the harness cannot mount the FUSE file system fs-faults
// needs (it needs root, or CAP_SYS_ADMIN, and /dev/fuse).
var ErrNoFUSE = errors.New("cannot mount a FUSE file system for fs-faults")

// Faults is a set of file-system faults.
type Faults uint32

const (
	// FailWrites fails every write to an open file with EIO.
	FailWrites Faults = 1 << iota
	// FailSyncs fails every fsync of an open file with EIO (a
	// directory's fsync is never failed).
	FailSyncs
	// FailRenames fails every rename with EIO.
	FailRenames
	// ReadOnly fails every change of a directory's entries (a file or
	// directory created, renamed, linked or removed) with EROFS: a
	// read-only directory. Files already there open and take writes.
	ReadOnly
)

// faultFS is a mounted FUSE passthrough file system with switchable faults.
// It counts the operations it refused, by kind.
type faultFS struct {
	dir    string // where it is mounted
	server *fuse.Server
	faults atomic.Uint32

	mu      sync.Mutex
	refused map[string]int
}

// mountFaultFS mounts at dir a passthrough of backing, without faults.
func mountFaultFS(dir, backing string) (*faultFS, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoFUSE, err)
	}
	for _, d := range []string{dir, backing} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("fault file system: %w", err)
		}
	}
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, fmt.Errorf("fault file system over %s: %w", backing, err)
	}
	f := &faultFS{dir: dir, refused: map[string]int{}}
	second := time.Second
	server, err := fs.Mount(dir, &faultNode{LoopbackNode: root.(*fs.LoopbackNode), fs: f}, &fs.Options{
		EntryTimeout: &second,
		AttrTimeout:  &second,
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true, // mount(2) itself: there may be no fusermount
			FsName:            backing,
			Name:              "walship-faultfs",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrNoFUSE, dir, err)
	}
	f.server = server
	if err := closeFUSEOnExec(); err != nil {
		f.unmount()
		return nil, fmt.Errorf("fault file system: %w", err)
	}
	return f, nil
}

// closeFUSEOnExec marks the harness's descriptors of /dev/fuse
// close-on-exec. go-fuse's direct mount opens it without O_CLOEXEC, so a
// sender started later would inherit it: should the harness die, the
// sender would then keep the connection alive with no one to serve it,
// and hang on its next access to the mount (in its own exit too), where
// it should get ENOTCONN.
func closeFUSEOnExec() error {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "/dev/fuse" {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
}

// set replaces the faults injected from now on; set(0) clears them.
func (f *faultFS) set(faults Faults) { f.faults.Store(uint32(faults)) }

// fail returns errno, counted as a refused op, when the faults on include
// fault, and 0 otherwise.
func (f *faultFS) fail(fault Faults, op string, errno syscall.Errno) syscall.Errno {
	if Faults(f.faults.Load())&fault == 0 {
		return 0
	}
	f.mu.Lock()
	f.refused[op]++
	f.mu.Unlock()
	return errno
}

// Refused returns how many operations the file system refused, by kind.
func (f *faultFS) Refused() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.refused)
}

// unmount unmounts the file system and stops serving it. A mount still
// busy (a process that has not exited yet holds files in it) is detached
// instead, and served until its last file is closed.
func (f *faultFS) unmount() error {
	f.set(0)
	err := f.server.Unmount()
	if err != nil {
		if derr := syscall.Unmount(f.dir, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("unmount %s: %w (detach: %v)", f.dir, err, derr)
		}
	}
	f.server.Wait()
	return nil
}

// faultNode is a file or directory of a faultFS: a loopback node that
// refuses changes of its entries while ReadOnly is on, and hands out
// file handles that fail writes and fsyncs.
type faultNode struct {
	*fs.LoopbackNode
	fs *faultFS
}

var (
	_ fs.NodeWrapChilder = (*faultNode)(nil)
	_ fs.NodeOpener      = (*faultNode)(nil)
	_ fs.NodeCreater     = (*faultNode)(nil)
	_ fs.NodeMkdirer     = (*faultNode)(nil)
	_ fs.NodeMknoder     = (*faultNode)(nil)
	_ fs.NodeLinker      = (*faultNode)(nil)
	_ fs.NodeSymlinker   = (*faultNode)(nil)
	_ fs.NodeRenamer     = (*faultNode)(nil)
	_ fs.NodeUnlinker    = (*faultNode)(nil)
	_ fs.NodeRmdirer     = (*faultNode)(nil)
)

// WrapChild makes every node under the root a faultNode.
func (n *faultNode) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &faultNode{LoopbackNode: ops.(*fs.LoopbackNode), fs: n.fs}
}

func (n *faultNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(fh), fuseFlags, 0
}

func (n *faultNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.fs.fail(ReadOnly, "create", syscall.EROFS); errno != 0 {
		return nil, nil, 0, errno
	}
	inode, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return inode, n.wrap(fh), fuseFlags, 0
}

func (n *faultNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.fs.fail(ReadOnly, "create", syscall.EROFS); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *faultNode) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.fs.fail(ReadOnly, "create", syscall.EROFS); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

func (n *faultNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.fs.fail(ReadOnly, "create", syscall.EROFS); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *faultNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.fs.fail(ReadOnly, "create", syscall.EROFS); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

func (n *faultNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := n.fs.fail(ReadOnly, "rename", syscall.EROFS); errno != 0 {
		return errno
	}
	if errno := n.fs.fail(FailRenames, "rename", syscall.EIO); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *faultNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := n.fs.fail(ReadOnly, "remove", syscall.EROFS); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *faultNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := n.fs.fail(ReadOnly, "remove", syscall.EROFS); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

// wrap returns the loopback's file handle fh as a faultFile.
func (n *faultNode) wrap(fh fs.FileHandle) fs.FileHandle {
	return &faultFile{LoopbackFile: fh.(*fs.LoopbackFile), fs: n.fs}
}

// faultFile is an open file of a faultFS: a loopback file whose writes
// fail while FailWrites is on, and whose fsyncs fail while FailSyncs is.
// A write the kernel splits into several requests may fail after the
// first ones were written: a short write, as a real disk's.
type faultFile struct {
	*fs.LoopbackFile
	fs *faultFS
}

var (
	_ fs.FileWriter          = (*faultFile)(nil)
	_ fs.FileWritever        = (*faultFile)(nil)
	_ fs.FileFsyncer         = (*faultFile)(nil)
	_ fs.FilePassthroughFder = (*faultFile)(nil)
)

func (f *faultFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := f.fs.fail(FailWrites, "write", syscall.EIO); errno != 0 {
		return 0, errno
	}
	return f.LoopbackFile.Write(ctx, data, off)
}

func (f *faultFile) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	if errno := f.fs.fail(FailWrites, "write", syscall.EIO); errno != 0 {
		return 0, errno
	}
	return f.LoopbackFile.Writev(ctx, data, off)
}

func (f *faultFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := f.fs.fail(FailSyncs, "fsync", syscall.EIO); errno != 0 {
		return errno
	}
	return f.LoopbackFile.Fsync(ctx, flags)
}

// PassthroughFd declines the kernel's passthrough of reads and writes to
// the backing file, which would bypass Write.
func (f *faultFile) PassthroughFd() (int, bool) { return 0, false }
