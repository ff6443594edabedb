package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// This file watches a sender's WAL directory for the moments faults are
// injected at: a checkpoint being written, a segment deleted, a segment
// begun.

// waitCheckpoint waits until the sender is writing a checkpoint (its
// checkpoint.N.tmp directory exists), polling every millisecond.
func (r *run) waitCheckpoint(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if tmp, _ := filepath.Glob(filepath.Join(r.walDir, "checkpoint.*.tmp")); len(tmp) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s wrote no checkpoint within a minute", r.s.Name)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// waitFinishedCheckpoint waits until the sender finished a checkpoint.
func (r *run) waitFinishedCheckpoint(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if _, cp := segmentRange(r.walDir); cp >= 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s finished no checkpoint within a minute", r.s.Name)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitDeletion waits until the sender deleted a WAL segment (the lowest
// segment number rose), polling every millisecond.
func (r *run) waitDeletion(ctx context.Context) error {
	first, _ := segmentRange(r.walDir)
	deadline := time.Now().Add(time.Minute)
	for {
		if lowest, _ := segmentRange(r.walDir); first >= 0 && lowest > first {
			return nil
		} else if first < 0 {
			first = lowest
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s deleted no segment within a minute", r.s.Name)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// deleting reports whether dir holds a segment that its newest finished
// checkpoint covers: checkpoint.N stands for segments up to N, which a
// truncation deletes after writing it.
func deleting(dir string) bool {
	lowest, checkpoint := segmentRange(dir)
	return lowest >= 0 && checkpoint >= 0 && lowest <= checkpoint
}

// segmentRange returns the lowest segment number in dir and the number of
// its newest finished checkpoint, -1 for none.
func segmentRange(dir string) (lowest, checkpoint int) {
	lowest, checkpoint = -1, -1
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if n, ok := strings.CutPrefix(name, "checkpoint."); ok {
			if k, err := strconv.Atoi(n); err == nil { // not a .tmp
				checkpoint = max(checkpoint, k)
			}
			continue
		}
		if k, err := strconv.Atoi(name); err == nil && (lowest < 0 || k < lowest) {
			lowest = k
		}
	}
	return lowest, checkpoint
}

// waitSegment waits until segment n exists, polling every 10 ms; it fails
// once deadline passed.
func (r *run) waitSegment(ctx context.Context, n int, deadline time.Time) error {
	for {
		if newest, _ := newestSegment(r.walDir); newest >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("segment %d not written within the outage: make it longer", n)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// newestSegment returns the highest segment number in dir, -1 for none.
func newestSegment(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	newest := -1
	for _, e := range entries {
		if k, err := strconv.Atoi(e.Name()); err == nil {
			newest = max(newest, k)
		}
	}
	return newest, err
}
