package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testModule = "example.com/m"

// testDoc is a page with a block of rules shaped like the real one.
const testDoc = "# A page\n\nProse.\n\n```imports\n" + `
*: !example.org/upstream/tsdb   # never
low:
high:
    low                          # walship
    example.org/lib example.org/metrics@metrics.go,options.go
    !net/http !os
` + "```\n\nMore prose.\n"

func TestCheck(t *testing.T) {
	r, err := parseRules(testDoc)
	require.NoError(t, err)

	cases := []struct {
		name    string
		file    string
		imports []string
		want    string // the problem reported, "" for none
	}{
		{"standard library", "a.go", []string{"fmt", "net/url", "io/fs"}, ""},
		{"forbidden standard library", "a.go", []string{"net/http"}, "high/a.go: high imports net/http: forbidden (!net/http)"},
		{"under a forbidden path", "a.go", []string{"net/http/httptrace"}, "high/a.go: high imports net/http/httptrace: forbidden (!net/http)"},
		{"an allowed walship package", "a.go", []string{testModule + "/low"}, ""},
		{"a walship package not named", "a.go", []string{testModule + "/other"}, "high/a.go: high imports example.com/m/other: not allowed"},
		{"an allowed module", "a.go", []string{"example.org/lib"}, ""},
		{"a package under an allowed path", "a.go", []string{"example.org/lib/sub"}, ""},
		{"a path that only starts like an allowed one", "a.go", []string{"example.org/library"}, "high/a.go: high imports example.org/library: not allowed"},
		{"allowed in that file", "options.go", []string{"example.org/metrics"}, ""},
		{"allowed in other files only", "a.go", []string{"example.org/metrics/sub"}, "high/a.go: high imports example.org/metrics/sub: allowed in those files only (example.org/metrics@metrics.go,options.go)"},
		{"forbidden for every package", "a.go", []string{"example.org/upstream/tsdb/wlog"}, "high/a.go: high imports example.org/upstream/tsdb/wlog: forbidden (!example.org/upstream/tsdb)"},
		{"another module", "a.go", []string{"example.net/x"}, "high/a.go: high imports example.net/x: not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkgs := []pkg{{name: "low"}, {name: "high", files: []file{{name: c.file, imports: c.imports}}}}
			var want []string
			if c.want != "" {
				want = []string{c.want}
			}
			require.Equal(t, want, r.check(testModule, pkgs))
		})
	}

	// The lower package may import nothing of walship.
	pkgs := []pkg{{name: "low", files: []file{{name: "l.go", imports: []string{testModule + "/high", "os"}}}}, {name: "high"}}
	require.Equal(t, []string{"low/l.go: low imports example.com/m/high: not allowed"}, r.check(testModule, pkgs))

	// Packages the block does not name, and names the module lacks.
	pkgs = []pkg{{name: "low"}, {name: "new"}}
	require.Equal(t, []string{
		"high: in the ```imports block but no package of the module",
		"new: package not in the ```imports block (add it, with what it may import)",
	}, r.check(testModule, pkgs))
}

// TestCheckQueue is the architecture page's rule that the queue reaches
// neither the network nor the disk itself.
func TestCheckQueue(t *testing.T) {
	r := architectureRules(t)
	pkgs := []pkg{{name: "queue", files: []file{{name: "shard.go", imports: []string{"net/http", "os", "github.com/walship/walship/wal"}}}}}
	problems := r.check("github.com/walship/walship", pkgs)
	require.Contains(t, problems, "queue/shard.go: queue imports net/http: forbidden (!net/http)")
	require.Contains(t, problems, "queue/shard.go: queue imports os: forbidden (!os)")
	require.Contains(t, problems, "queue/shard.go: queue imports github.com/walship/walship/wal: not allowed")
}

// architectureRules are the rules of docs/ARCHITECTURE.md, which must parse.
func architectureRules(t *testing.T) *rules {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/ARCHITECTURE.md")
	require.NoError(t, err)
	r, err := parseRules(string(doc))
	require.NoError(t, err)
	return r
}

func TestParseRulesRejects(t *testing.T) {
	block := func(s string) string { return "```imports\n" + s + "\n```\n" }
	cases := map[string]string{
		"no block":                "# nothing\n",
		"two blocks":              block("a:") + block("b:"),
		"unclosed":                "```imports\na:\n",
		"item before a package":   block("fmt\na:"),
		"a package twice":         block("a:\na:"),
		"an unknown walship name": block("a: b"),
		"files on a forbidden":    block("a: !net/http@a.go"),
		"an empty file name":      block("a: example.org/x@a.go,"),
		"no package":              block("# empty"),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseRules(doc)
			require.Error(t, err)
			require.False(t, strings.Contains(err.Error(), "%!"), err.Error())
		})
	}
}
