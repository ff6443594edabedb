package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// Replaying a fixture written by Prometheus delivers exactly the samples,
// histograms and exemplars that `walship inspect` counts in it, and exits 0.
func TestReplayDeliversInspectCounts(t *testing.T) {
	replayFixture(t, "none", [3]int{}, 0)
}

// The snappy fixture has a checkpoint holding samples (replayed too) and
// samples whose series record comes later in the log (known, since replay
// learns every series first). It also holds 5,225 samples, 1,705
// histograms and 135 exemplars of 95 series no series record names (see
// watcher/backfill_test.go): those cannot be labelled, are reported as
// dropped, and make replay exit 1; everything else arrives.
func TestReplayCheckpointAndLateSeries(t *testing.T) {
	replayFixture(t, "snappy", [3]int{5225, 1705, 135}, 1)
}

// replayFixture replays testdata/wal/<name> and checks that what arrives is
// inspect's count less the unlabelled samples, histograms and exemplars,
// and the exit status.
func replayFixture(t *testing.T, name string, unlabelled [3]int, wantCode int) {
	dir := fixture(name)
	stdout, stderr, code := walship(t, "inspect", "--wal.dir", dir, "--json")
	require.Equal(t, 0, code, stderr)
	var want struct {
		Samples, Histograms, Exemplars, Metadata int
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &want))
	require.Positive(t, want.Samples)

	recv := testkit.NewReceiver(t)
	work := t.TempDir()
	cfg := writeFile(t, filepath.Join(work, "walship.yml"), "remote_write:\n"+remoteWrite("fixture", recv.URL))
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	p := start(t, work, false, "replay", "--config.file", cfg, "--wal.dir", abs)
	require.Equal(t, wantCode, p.wait(60*time.Second), p.stderr.String())

	got := recv.Accepted()
	samples, histograms, exemplars := got.Samples, got.Histograms, got.Exemplars
	require.Equal(t, want.Samples-unlabelled[0], samples)
	require.Equal(t, want.Histograms-unlabelled[1], histograms)
	require.Equal(t, want.Exemplars-unlabelled[2], exemplars)
	require.Positive(t, want.Metadata)
	require.NotEmpty(t, recv.Metadata(), "the WAL's metadata, sent as replay flushes (RW1: before send_interval)")
	require.Contains(t, p.stderr.String(), "replay: ")
	require.Contains(t, p.stderr.String(), "bytes on the wire")
	// Nothing is left behind in the working directory: replay keeps no positions.
	_, err = filepath.Glob(filepath.Join(work, "data-agent"))
	require.NoError(t, err)
	require.NoDirExists(t, filepath.Join(work, "data-agent"))
}

// A damaged page in the middle of a segment: replay sends everything the
// damage did not reach (what inspect counts in the damaged copy, which is
// more than the segments around it), says how much could not be read and
// exits 1.
func TestReplayPassesOverDamage(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(fixture("none"))))
	seg := filepath.Join(dir, "00000001")
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	clear(data[32768+100 : 32768+200]) // in the second of four pages
	require.NoError(t, os.WriteFile(seg, data, 0o644))

	stdout, stderr, code := walship(t, "inspect", "--wal.dir", dir, "--json")
	require.Equal(t, 1, code, stderr)
	var want struct {
		Samples  int
		Segments []struct{ Samples int }
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &want))
	require.Positive(t, want.Segments[1].Samples, "the damaged segment's pages after the damage")

	recv := testkit.NewReceiver(t)
	work := t.TempDir()
	cfg := writeFile(t, filepath.Join(work, "walship.yml"), "remote_write:\n"+remoteWrite("fixture", recv.URL))
	p := start(t, work, false, "replay", "--config.file", cfg, "--wal.dir", dir)
	require.Equal(t, 1, p.wait(60*time.Second), p.stderr.String())
	require.Equal(t, want.Samples, recv.Accepted().Samples)
	require.Contains(t, p.stderr.String(), "bytes of the WAL are damaged and were not sent")
}
