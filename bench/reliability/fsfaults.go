package reliability

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// This file is the fs-faults scenario: the agent's data directory is a
// faultFS, which fails for the outage's length in four ways in turn
// (fsFaultPhases), and then works again. Every sample the WAL holds must
// arrive; the commits that failed are counted, their scrapes were never
// written.

// fsFaultPhases are fs-faults' faults, each on for a quarter of the
// outage's length. Writes failing make commits fail (a failed write is
// taken back); fsyncs failing alone let commits through but break the
// segment being finished when the writer moves to the next one (its
// content is unknown after a failed fsync); renames failing let commits
// through; a read-only directory lets commits go on in the open segment
// until it is full, then fails them (no next segment). In each, position
// saves fail (a temporary file written, fsynced, renamed over the old
// one), and so do the truncations the agent starts every 2 s: the new
// segment each starts (in the first two and the last), or the rename of
// its checkpoint into place (in the third).
var fsFaultPhases = []struct {
	faults Faults
	what   string
}{
	{FailWrites | FailSyncs, "EIO on every write and fsync"},
	{FailSyncs, "EIO on every fsync"},
	{FailRenames, "EIO on every rename"},
	{ReadOnly, "read-only (EROFS on every file created, renamed or removed)"},
}

// fsFaultsInjected describes fs-faults' faults for the results table.
func (r *run) fsFaultsInjected() string {
	var phases []string
	for _, p := range fsFaultPhases {
		phases = append(phases, p.what)
	}
	return fmt.Sprintf("its data directory (a FUSE passthrough) failing for %s, a quarter each: %s; then healthy (%s)",
		r.o.Outage, strings.Join(phases, ", "), strings.Join(r.flags("fs-faults"), " "))
}

// mountFaultFS makes dataDir a faultFS over a directory beside it, which
// it returns (the files are there on the real disk); it is unmounted when
// the scenario ends (also when it fails).
func (r *run) mountFaultFS(dataDir string) (backing string, err error) {
	backing = filepath.Join(r.dir, "backing")
	f, err := mountFaultFS(dataDir, backing)
	if err != nil {
		return "", err
	}
	r.ffs = f
	r.closers = append(r.closers, func() { f.unmount() }) // after the agent stopped; a mount still busy is detached
	return backing, nil
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
