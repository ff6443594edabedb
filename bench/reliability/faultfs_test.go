package reliability

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFaultFS checks the fs-faults file system: it passes everything
// through until a fault is switched on, then refuses exactly what that
// fault names, as a process sees it through the mount (a file kept open
// across the faults, as the agent keeps its segment).
func TestFaultFS(t *testing.T) {
	dir := t.TempDir()
	f, err := mountFaultFS(filepath.Join(dir, "mnt"), filepath.Join(dir, "backing"))
	if errors.Is(err, ErrNoFUSE) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.unmount(); err != nil {
			t.Error(err)
		}
	})
	path := filepath.Join(f.dir, "segment")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	write := func() error { _, err := file.Write([]byte("record")); return err }
	create := func() error {
		g, err := os.Create(filepath.Join(f.dir, "position.tmp"))
		if err == nil {
			g.Close()
		}
		return err
	}
	rename := func() error { return os.Rename(filepath.Join(f.dir, "position.tmp"), filepath.Join(f.dir, "position")) }
	remove := func() error { return os.Remove(filepath.Join(f.dir, "position")) }

	for _, c := range []struct {
		name   string
		faults Faults
		op     func() error
		want   error // nil: succeeds
	}{
		{"write", 0, write, nil},
		{"fsync", 0, file.Sync, nil},
		{"write", FailWrites, write, syscall.EIO},
		{"fsync", FailWrites, file.Sync, nil},
		{"fsync", FailSyncs, file.Sync, syscall.EIO},
		{"write", FailSyncs, write, nil},
		{"create", ReadOnly, create, syscall.EROFS},
		{"write", ReadOnly, write, nil},
		{"create", 0, create, nil},
		{"rename", ReadOnly, rename, syscall.EROFS},
		{"rename", FailRenames, rename, syscall.EIO},
		{"create", FailRenames, create, nil},
		{"rename", 0, rename, nil},
		{"remove", ReadOnly, remove, syscall.EROFS},
		{"remove", 0, remove, nil},
	} {
		f.set(c.faults)
		if err := c.op(); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s with faults %b: %v, want %v", c.name, c.faults, err, c.want)
		}
	}
	f.set(0)
	want := map[string]int{"write": 1, "fsync": 1, "create": 1, "rename": 2, "remove": 1}
	if got := f.Refused(); !maps.Equal(got, want) {
		t.Errorf("refused %v, want %v", got, want)
	}
	// What was written got through to the backing directory.
	data, err := os.ReadFile(filepath.Join(dir, "backing", "segment"))
	if err != nil || string(data) != "recordrecordrecord" {
		t.Errorf("backing file holds %q (%v), want the three writes that succeeded", data, err)
	}
}
