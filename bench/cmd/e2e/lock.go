package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// workLock is the lock on this process's work directory, held until it
// exits.
var workLock *os.File

// lockWork takes dir for this process: two runs sharing a work directory
// remove each other's data directories under running senders.
func lockWork(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".e2e.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("work directory %s is in use by another e2e run (%w): wait for it, or give this one another --work", dir, err)
	}
	workLock = f
	return nil
}
