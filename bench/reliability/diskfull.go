package reliability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// This file is the disk-full scenario's fault: the agent's data directory
// is a file system of its own (a tmpfs), which a ballast file fills to the
// last byte while the agent runs, and which is freed again: every write of
// segments, checkpoints and position files meets ENOSPC, then succeeds.

// ErrNoMount means the harness cannot mount the tmpfs disk-full needs (it
// needs root, or CAP_SYS_ADMIN).
var ErrNoMount = errors.New("cannot mount a tmpfs for disk-full")

// diskSize is the size of the agent's data file system in disk-full.
const diskSize = 64 << 20

// mountDisk mounts a tmpfs of diskSize at dir for the scenario; it is
// unmounted when the scenario ends.
func (r *run) mountDisk(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", diskSize), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %v: %s", ErrNoMount, err, out)
	}
	r.closers = append(r.closers, func() { exec.Command("umount", dir).Run() })
	return nil
}

// fillDisk writes a ballast file in dir until the file system has no byte
// left; it returns the file's path.
func fillDisk(dir string) (string, error) {
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		return path, err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for size := len(chunk); size > 0; {
		if _, err := f.Write(chunk[:size]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				return path, err
			}
			size /= 2 // the last bytes in smaller writes
		}
	}
	return path, nil
}

// diskFull fills the agent's data file system, keeps it full for d, and
// frees it; it returns when it was freed.
func (r *run) diskFull(ctx context.Context, d time.Duration) (time.Time, error) {
	ballast, err := fillDisk(filepath.Dir(r.walDir))
	if err != nil {
		os.Remove(ballast)
		return time.Time{}, fmt.Errorf("fill the disk: %w", err)
	}
	if err := sleep(ctx, d); err != nil {
		return time.Time{}, err
	}
	if err := os.Remove(ballast); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}
