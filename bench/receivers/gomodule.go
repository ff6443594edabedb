package receivers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goBuildInModule builds the command pkg of module mod at version into
// bin inside a throw-away module of its own, for a module whose go.mod
// has replace directives (go install refuses those): its go.mod requires
// mod@version and copies that version's go line and replace directives.
// The go command runs with the Go toolchain given (GOTOOLCHAIN), which
// it takes from the module proxy once; nothing else of the machine's Go
// changes. flags go to go build.
func goBuildInModule(ctx context.Context, mod, version, pkg, toolchain, bin string, flags ...string) error {
	dir, err := os.MkdirTemp(filepath.Dir(bin), "module-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	gocmd := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain, "GOFLAGS=-mod=mod -buildvcs=false")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go %s: %w: %s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return out, nil
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module walship.invalid/build\n"), 0o644); err != nil {
		return err
	}
	out, err := gocmd("mod", "download", "-json", mod+"@"+version)
	if err != nil {
		return err
	}
	var dl struct{ GoMod, Error string }
	if err := json.Unmarshal(out, &dl); err != nil || dl.Error != "" || dl.GoMod == "" {
		return fmt.Errorf("go mod download %s@%s: %v %s", mod, version, err, dl.Error)
	}
	if out, err = gocmd("mod", "edit", "-json", dl.GoMod); err != nil {
		return err
	}
	var gm struct {
		Go      string
		Replace []struct {
			Old, New struct{ Path, Version string }
		}
	}
	if err := json.Unmarshal(out, &gm); err != nil {
		return fmt.Errorf("%s@%s's go.mod: %w", mod, version, err)
	}
	args := []string{"mod", "edit", "-go=" + gm.Go, "-require=" + mod + "@" + version}
	for _, r := range gm.Replace {
		if r.New.Version == "" {
			return fmt.Errorf("%s@%s replaces %s with the directory %s, which a module of its own cannot copy", mod, version, r.Old.Path, r.New.Path)
		}
		old := r.Old.Path
		if r.Old.Version != "" {
			old += "@" + r.Old.Version
		}
		args = append(args, "-replace="+old+"="+r.New.Path+"@"+r.New.Version)
	}
	if _, err := gocmd(args...); err != nil {
		return err
	}
	if _, err := gocmd(append(append([]string{"build", "-o", bin + ".tmp"}, flags...), mod+"/"+pkg)...); err != nil {
		return err
	}
	return os.Rename(bin+".tmp", bin)
}
