package main_test

import (
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walship/walship/wal"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "walship-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "walship")
	// The full build, with the tags make build gives bin/walship-agent.
	out, err := exec.Command("go", "build", "-tags", "dedupelabels", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		panic("build walship: " + err.Error() + "\n" + string(out))
	}
	// Fails the tests if any of them leaves a goroutine behind (a
	// receiver not closed, a process's output not waited for).
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// walship runs the binary and returns its stdout, stderr and exit status.
func walship(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr safeBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return stdout.String(), stderr.String(), 0
}

type safeBuffer struct{ b []byte }

func (s *safeBuffer) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *safeBuffer) String() string              { return string(s.b) }

func writeLog(t *testing.T, dir string) {
	w, err := wal.Open(dir, wal.Options{SegmentSize: 2 * wal.PageSize, Compression: wal.Snappy})
	require.NoError(t, err)
	rng := rand.New(rand.NewSource(1))
	rec := make([]byte, 5000)
	for i := 0; i < 40; i++ {
		rng.Read(rec)
		rec[0] = 99 // an unknown record type: counted, not decoded
		require.NoError(t, w.Log(rec))
	}
	require.NoError(t, w.Close())
}

func TestInspectJSON(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir)
	stdout, stderr, code := walship(t, "inspect", "--wal.dir", dir, "--json")
	require.Equal(t, 0, code, stderr)
	var rep struct {
		Segments    []map[string]any `json:"segments"`
		Series      *int             `json:"series"`
		Samples     *int             `json:"samples"`
		Histograms  *int             `json:"histograms"`
		Exemplars   *int             `json:"exemplars"`
		Metadata    *int             `json:"metadata"`
		MinTime     *int64           `json:"min_time"`
		MaxTime     *int64           `json:"max_time"`
		Corruptions []map[string]any `json:"corruptions"`
		Records     map[string]int   `json:"records"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.NotNil(t, rep.Series)
	require.NotNil(t, rep.Samples)
	require.NotNil(t, rep.MinTime)
	require.NotNil(t, rep.Corruptions)
	require.Empty(t, rep.Corruptions)
	require.Greater(t, len(rep.Segments), 1)
	require.Equal(t, 40, rep.Records["unknown"])
}

func TestInspectCorruptExitsOne(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir)
	path := wal.SegmentPath(dir, 0)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[200] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o666))

	stdout, _, code := walship(t, "inspect", "--wal.dir", dir)
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "corruptions: 1")
	require.Contains(t, stdout, "segment 00000000 offset 0")
}

func TestInspectBadInput(t *testing.T) {
	_, stderr, code := walship(t, "inspect", "--wal.dir", filepath.Join(t.TempDir(), "missing"))
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "does not exist")

	_, stderr, code = walship(t, "inspect")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--wal.dir")

	_, stderr, code = walship(t, "inspect", "--wal.dir", t.TempDir())
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "is not a WAL directory")

	data := t.TempDir()
	writeLog(t, filepath.Join(data, "wal"))
	_, stderr, code = walship(t, "inspect", "--wal.dir", data)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "did you mean --wal.dir="+filepath.Join(data, "wal"))
}
