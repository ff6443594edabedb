package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// serverConfig is a Prometheus server's configuration file, as a sidecar
// beside it reads it: scrape_configs with Kubernetes discovery, rule files
// and alerting, none of which sidecar or replay use.
const serverConfig = `global:
  scrape_interval: 15s
  external_labels:
    cluster: eu-1
rule_files:
  - rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["alertmanager:9093"]
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
remote_write:
`

// The lean build (make build's bin/walship, built with the nosd tag)
// leaves Prometheus's service discovery out. It replays a WAL with a
// Prometheus server's configuration file, as the full build does, and the
// agent command runs walship-agent (the full build) next to it, or says
// that it cannot.
func TestLeanBuild(t *testing.T) {
	dir := t.TempDir()
	lean := filepath.Join(dir, "walship")
	out, err := exec.Command("go", "build", "-tags", "nosd", "-o", lean, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	agent := filepath.Join(dir, "walship-agent")
	require.NoError(t, os.Symlink(binary, agent))

	// Both builds replay with the server's configuration file.
	for _, bin := range []string{lean, binary} {
		recv := testkit.NewReceiver(t)
		work := t.TempDir()
		cfg := writeFile(t, filepath.Join(work, "prometheus.yml"), serverConfig+remoteWrite("fixture", recv.URL))
		abs, err := filepath.Abs(fixture("none"))
		require.NoError(t, err)
		p := startBinary(t, bin, work, false, "replay", "--config.file", cfg, "--wal.dir", abs)
		require.Equal(t, 0, p.wait(60*time.Second), p.stderr.String())
		stdout, stderr, code := walship(t, "inspect", "--wal.dir", abs, "--json")
		require.Equal(t, 0, code, stderr)
		var want struct{ Samples int }
		require.NoError(t, json.Unmarshal([]byte(stdout), &want))
		samples := recv.Accepted().Samples
		require.Equal(t, want.Samples, samples, bin)
	}

	// The agent runs in walship-agent: its own error for a missing file.
	cmd := exec.Command(lean, "agent", "--config.file", filepath.Join(dir, "missing.yml"))
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Equal(t, 2, cmd.ProcessState.ExitCode())
	require.Contains(t, string(out), "walship agent cannot start", "the full build's message")

	// Without walship-agent, one clear line.
	require.NoError(t, os.Remove(agent))
	cmd = exec.Command(lean, "demo")
	cmd.Env = append(os.Environ(), "PATH="+dir) // nor on the PATH
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Equal(t, 2, cmd.ProcessState.ExitCode())
	require.Contains(t, string(out), "the agent runs in walship-agent")
}
