// Command importcheck fails when a package of the module imports what
// docs/ARCHITECTURE.md does not allow it. The rules are written once, in
// that page's fenced block marked "imports" (see parseRules), so the page
// and the check cannot disagree; make lint runs it from the module's root.
//
// Every non-test Go file of every package `go list ./...` finds is read,
// those left out of the default build by build constraints (the lean
// build's, other systems') included. It prints one line per import the
// rules do not allow, and per package the block does not name or names
// but the module lacks, and exits 1 if there is any; 2 if it cannot check.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	doc := flag.String("doc", "docs/ARCHITECTURE.md", "the page holding the rules")
	goCmd := flag.String("go", "go", "the go command")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: importcheck [-doc file] [-go cmd] [packages (default ./...)]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}

	text, err := os.ReadFile(*doc)
	if err != nil {
		fail(err)
	}
	r, err := parseRules(string(text))
	if err != nil {
		fail(fmt.Errorf("%s: %w", *doc, err))
	}
	module, pkgs, err := load(*goCmd, patterns)
	if err != nil {
		fail(err)
	}
	problems := r.check(module, pkgs)
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "importcheck: %d imports or packages against the rules of %s (its %s block)\n", len(problems), *doc, blockStart)
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "importcheck:", err)
	os.Exit(2)
}

// listed is what load reads of `go list -json` for one package.
type listed struct {
	ImportPath string
	Dir        string
	Module     *struct {
		Path string
		Main bool
	}
	GoFiles, CgoFiles, IgnoredGoFiles []string
}

// load lists the packages of the main module that patterns match and reads
// the imports of their non-test files. It returns the module's path.
func load(goCmd string, patterns []string) (string, []pkg, error) {
	args := append([]string{"list", "-e", "-json=ImportPath,Dir,Module,GoFiles,CgoFiles,IgnoredGoFiles"}, patterns...)
	cmd := exec.Command(goCmd, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("go list: %w\n%s", err, stderr.Bytes())
	}
	var (
		module string
		pkgs   []pkg
		fset   = token.NewFileSet()
	)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", nil, fmt.Errorf("go list: %w", err)
		}
		if l.Module == nil || !l.Module.Main {
			continue // not the module's own
		}
		if module == "" {
			module = l.Module.Path
		}
		name := "."
		if l.ImportPath != module {
			name = strings.TrimPrefix(l.ImportPath, module+"/")
		}
		p := pkg{name: name}
		for _, group := range [][]string{l.GoFiles, l.CgoFiles, l.IgnoredGoFiles} {
			for _, base := range group {
				if strings.HasSuffix(base, "_test.go") {
					continue
				}
				imports, err := fileImports(fset, filepath.Join(l.Dir, base))
				if err != nil {
					return "", nil, err
				}
				p.files = append(p.files, file{name: base, imports: imports})
			}
		}
		pkgs = append(pkgs, p)
	}
	if module == "" {
		return "", nil, fmt.Errorf("go list %s: no package of the main module", strings.Join(patterns, " "))
	}
	return module, pkgs, nil
}

// fileImports returns the import paths of the Go file at path.
func fileImports(fset *token.FileSet, path string) ([]string, error) {
	f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
	if err != nil {
		return nil, err
	}
	imports := make([]string, 0, len(f.Imports))
	for _, s := range f.Imports {
		p, err := strconv.Unquote(s.Path.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: import %s: %w", path, s.Path.Value, err)
		}
		imports = append(imports, p)
	}
	return imports, nil
}
