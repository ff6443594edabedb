package main_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Replaying a fixture written by Prometheus delivers exactly the samples,
// histograms and exemplars that `walship inspect` counts in it, and exits 0.
// (testdata/wal/snappy is not used: see .helper-notes-cmd.md, item 3.)
func TestReplayDeliversInspectCounts(t *testing.T) {
	dir := fixture("none")
	stdout, stderr, code := walship(t, "inspect", "--wal.dir", dir, "--json")
	require.Equal(t, 0, code, stderr)
	var want struct {
		Samples, Histograms, Exemplars int
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &want))
	require.Positive(t, want.Samples)

	recv := newReceiver(t)
	work := t.TempDir()
	cfg := writeFile(t, filepath.Join(work, "walship.yml"), "remote_write:\n"+remoteWrite("fixture", recv.URL))
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	p := start(t, work, false, "replay", "--config.file", cfg, "--wal.dir", abs)
	require.Equal(t, 0, p.wait(60*time.Second), p.stderr.String())

	samples, histograms, exemplars := recv.counts()
	require.Equal(t, want.Samples, samples)
	require.Equal(t, want.Histograms, histograms)
	require.Equal(t, want.Exemplars, exemplars)
	require.Contains(t, p.stderr.String(), "replay: ")
	require.Contains(t, p.stderr.String(), "bytes on the wire")
	// Nothing is left behind in the working directory: replay keeps no positions.
	_, err = filepath.Glob(filepath.Join(work, "data-agent"))
	require.NoError(t, err)
	require.NoDirExists(t, filepath.Join(work, "data-agent"))
}
