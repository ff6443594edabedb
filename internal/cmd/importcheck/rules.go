package main

import (
	"bufio"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// blockStart opens the fenced block of docs/ARCHITECTURE.md that holds the
// rules; the next line starting with ``` closes it.
const blockStart = "```imports"

// global names the entry whose rules apply to every package.
const global = "*"

// rules are what each package of the module may import: for every package
// (a path relative to the module, such as wal/record) its entry, and the
// global entry.
type rules struct {
	entries map[string]*entry // by package; global included
}

// entry is one package's rules.
type entry struct {
	allow  []allowed
	forbid []string // paths (and everything under them) never imported
}

// allowed is one path a package may import: a package of the module, which
// allows that package only, or any other path, which allows it and
// everything under it. With files, only those files (base names) may.
type allowed struct {
	path   string
	local  bool // a package of the module
	files  []string
	source string // as written, for messages
}

// parseRules reads the rules from the text of the architecture page. The
// block lists each package as "name:" followed by what it may import,
// separated by spaces or newlines; "#" starts a comment. An item is
//
//	wal/record          a package of the module (no dot in its first element)
//	github.com/a/b      a path outside the module, with everything under it
//	path@a.go,b.go      the same, in those files only
//	!net/http           never, even from the standard library
//
// The standard library is allowed unless an entry forbids part of it.
func parseRules(doc string) (*rules, error) {
	type item struct {
		e    *entry
		text string
		line int
	}
	var (
		in, seen bool
		lineNo   int
		cur      *entry
		items    []item
		r        = &rules{entries: map[string]*entry{}}
	)
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if !in {
			if trimmed == blockStart {
				if seen {
					return nil, fmt.Errorf("line %d: a second %s block", lineNo, blockStart)
				}
				in, seen = true, true
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			in = false
			continue
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, f := range strings.Fields(line) {
			if name, ok := strings.CutSuffix(f, ":"); ok {
				if name == "" || r.entries[name] != nil {
					return nil, fmt.Errorf("line %d: package %q named twice or empty", lineNo, name)
				}
				cur = &entry{}
				r.entries[name] = cur
				continue
			}
			if cur == nil {
				return nil, fmt.Errorf("line %d: %q before the first package", lineNo, f)
			}
			items = append(items, item{cur, f, lineNo})
		}
	}
	if !seen {
		return nil, fmt.Errorf("no %s block", blockStart)
	}
	if in {
		return nil, fmt.Errorf("the %s block is not closed", blockStart)
	}
	// Items are read once every package is known: a name without a dot
	// in its first element must be one of them.
	for _, it := range items {
		if p, ok := strings.CutPrefix(it.text, "!"); ok {
			if p == "" || strings.Contains(p, "@") {
				return nil, fmt.Errorf("line %d: %q: a forbidden path is a path, with no @files", it.line, it.text)
			}
			it.e.forbid = append(it.e.forbid, p)
			continue
		}
		p, files, hasFiles := strings.Cut(it.text, "@")
		a := allowed{path: p, source: it.text}
		if hasFiles {
			a.files = strings.Split(files, ",")
			if slices.Contains(a.files, "") {
				return nil, fmt.Errorf("line %d: %q: an empty file name", it.line, it.text)
			}
		}
		if !hasDot(p) {
			if r.entries[p] == nil || p == global {
				return nil, fmt.Errorf("line %d: %q is no package of the block (and no path outside the module)", it.line, p)
			}
			a.local = true
		}
		it.e.allow = append(it.e.allow, a)
	}
	if len(r.entries) == 0 {
		return nil, fmt.Errorf("the %s block names no package", blockStart)
	}
	return r, nil
}

// hasDot reports whether the first element of path has a dot: a module
// path does, the standard library's and the block's own names do not.
func hasDot(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return strings.Contains(first, ".")
}

// under reports whether path is prefix or a package under it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// pkg is one package of the module as the check sees it.
type pkg struct {
	name  string // relative to the module: wal/record, cmd/walship
	files []file // its non-test files, those of every build
}

// file is one non-test Go file and what it imports.
type file struct {
	name    string // base name
	imports []string
}

// check returns a line for every import of pkgs that the rules do not
// allow, for every package the rules do not name, and for every package
// they name that does not exist; sorted, and none when all is well.
// module is the module's path.
func (r *rules) check(module string, pkgs []pkg) []string {
	var problems []string
	exists := map[string]bool{}
	for _, p := range pkgs {
		exists[p.name] = true
		e := r.entries[p.name]
		if e == nil {
			problems = append(problems, fmt.Sprintf("%s: package not in the %s block (add it, with what it may import)", p.name, blockStart))
			continue
		}
		for _, f := range p.files {
			for _, imp := range f.imports {
				if why := r.forbidden(module, e, f.name, imp); why != "" {
					problems = append(problems, fmt.Sprintf("%s/%s: %s imports %s: %s", p.name, f.name, p.name, imp, why))
				}
			}
		}
	}
	for name := range r.entries {
		if name != global && !exists[name] {
			problems = append(problems, fmt.Sprintf("%s: in the %s block but no package of the module", name, blockStart))
		}
	}
	sort.Strings(problems)
	return problems
}

// forbidden says why a package with entry e may not import imp in its
// file fileName, or "" when it may.
func (r *rules) forbidden(module string, e *entry, fileName, imp string) string {
	path, local := imp, false
	if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
		path, local = rel, true
	} else if imp == module {
		path, local = ".", true
	}
	for _, en := range []*entry{r.entries[global], e} {
		if en == nil {
			continue
		}
		for _, f := range en.forbid {
			if under(path, f) {
				return "forbidden (!" + f + ")"
			}
		}
	}
	if !local && !hasDot(path) {
		return "" // the standard library
	}
	var onlyIn []string
	for _, en := range []*entry{r.entries[global], e} {
		if en == nil {
			continue
		}
		for _, a := range en.allow {
			if a.local != local || (local && a.path != path) || (!local && !under(path, a.path)) {
				continue
			}
			if a.files == nil || slices.Contains(a.files, fileName) {
				return ""
			}
			onlyIn = append(onlyIn, a.source)
		}
	}
	if onlyIn != nil {
		return "allowed in those files only (" + strings.Join(onlyIn, " ") + ")"
	}
	return "not allowed"
}
