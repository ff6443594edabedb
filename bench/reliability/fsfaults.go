package reliability

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// This file is the fs-faults scenario: the agent's data directory is a
// faultFS, which fails for the outage's length in three ways in turn
// (fsFaultPhases), and then works again. Every sample the WAL holds must
// arrive; the commits that failed are counted, their scrapes were never
// written.

// fsFaultPhases are fs-faults' faults, each on for a third of the
// outage's length. Writes failing make commits fail (a failed write is
// taken back) and position saves fail; fsyncs failing alone let commits
// through but break the segment being finished when the writer moves to
// the next one (its content is unknown after a failed fsync) and fail
// position saves; a read-only directory lets commits go on in the open
// segment until it is full, then fail them (no next segment), and fails
// position saves (no temporary file, no rename).
var fsFaultPhases = []struct {
	faults Faults
	what   string
}{
	{FailWrites | FailSyncs, "EIO on every write and fsync"},
	{FailSyncs, "EIO on every fsync"},
	{ReadOnly, "read-only (EROFS on every file created, renamed or removed)"},
}

// fsFaultsInjected describes fs-faults' faults for the results table.
func (r *run) fsFaultsInjected() string {
	var phases []string
	for _, p := range fsFaultPhases {
		phases = append(phases, p.what)
	}
	return fmt.Sprintf("its data directory (a FUSE passthrough) failing for %s, a third each: %s; then healthy (%s)",
		r.o.Outage, strings.Join(phases, ", "), strings.Join(r.flags("fs-faults"), " "))
}

// mountFaultFS makes dataDir a faultFS over a directory beside it (its
// content stays there); it is unmounted when the scenario ends (also
// when it fails).
func (r *run) mountFaultFS(dataDir string) error {
	f, err := mountFaultFS(dataDir, filepath.Join(r.dir, "backing"))
	if err != nil {
		return err
	}
	r.ffs = f
	r.closers = append(r.closers, func() { f.unmount() }) // after the agent stopped; a mount still busy is detached
	return nil
}

// fsFaults runs fsFaultPhases over d and clears the faults; it returns
// when the file system works again.
func (r *run) fsFaults(ctx context.Context, d time.Duration) (time.Time, error) {
	defer r.ffs.set(0)
	for _, p := range fsFaultPhases {
		r.ffs.set(p.faults)
		if err := sleep(ctx, d/time.Duration(len(fsFaultPhases))); err != nil {
			return time.Time{}, err
		}
	}
	r.ffs.set(0)
	return time.Now(), nil
}
