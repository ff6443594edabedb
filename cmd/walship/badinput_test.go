package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// readOnlyDir returns a directory this process cannot create files in:
// a 0555 directory, or, for root (who ignores modes), /sys/fs.
func readOnlyDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "ro")
	require.NoError(t, os.Mkdir(dir, 0o555))
	for _, d := range []string{dir, "/sys/fs"} {
		f, err := os.CreateTemp(d, "probe")
		if err != nil {
			return d
		}
		f.Close()
		os.Remove(f.Name())
	}
	t.Skip("no read-only directory available")
	return ""
}

// Bad input ends with a clear message and exit status 2, never a panic.
func TestBadInput(t *testing.T) {
	work := t.TempDir()
	recv := testkit.NewReceiver(t)
	good := writeFile(t, filepath.Join(work, "good.yml"), "remote_write:\n"+remoteWrite("r", recv.URL))
	invalid := writeFile(t, filepath.Join(work, "invalid.yml"), "scrape_configs:\n  - job_name: [not a string\n")
	unknownField := writeFile(t, filepath.Join(work, "unknown.yml"), "remote_write:\n  - url: http://x\n    no_such_field: 1\n")
	noRemote := writeFile(t, filepath.Join(work, "noremote.yml"), "global:\n  scrape_interval: 15s\n")
	walDir, err := filepath.Abs(fixture("none"))
	require.NoError(t, err)
	notWAL := t.TempDir()
	writeFile(t, filepath.Join(notWAL, "README"), "not a segment")
	dataDir := t.TempDir() // a Prometheus data dir: the WAL is in data/wal
	require.NoError(t, os.Symlink(walDir, filepath.Join(dataDir, "wal")))

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing config", []string{"sidecar", "--config.file", filepath.Join(work, "missing.yml"), "--wal.dir", walDir}, "couldn't load configuration"},
		{"invalid config", []string{"replay", "--config.file", invalid, "--wal.dir", walDir}, "couldn't load configuration"},
		{"unknown field", []string{"agent", "--config.file", unknownField}, "no_such_field"},
		{"agent invalid config", []string{"--config.file", invalid}, "couldn't load configuration"},
		{"sidecar without remote_write", []string{"sidecar", "--config.file", noRemote, "--wal.dir", walDir}, "has no remote_write section"},
		{"replay without remote_write", []string{"replay", "--config.file", noRemote, "--wal.dir", walDir}, "has no remote_write section"},
		{"sidecar WAL missing", []string{"sidecar", "--config.file", good, "--wal.dir", filepath.Join(work, "nope")}, "does not exist"},
		{"replay WAL missing", []string{"replay", "--config.file", good, "--wal.dir", filepath.Join(work, "nope")}, "does not exist"},
		{"not a WAL", []string{"sidecar", "--config.file", good, "--wal.dir", notWAL}, "is not a WAL directory"},
		{"data dir instead of WAL", []string{"replay", "--config.file", good, "--wal.dir", dataDir}, "did you mean --wal.dir=" + filepath.Join(dataDir, "wal")},
		{"WAL is a file", []string{"replay", "--config.file", good, "--wal.dir", good}, "is not a directory"},
		{"wal.start", []string{"sidecar", "--config.file", good, "--wal.dir", walDir, "--wal.start", "yesterday"}, "wal.start"},
		{"flush deadline", []string{"--storage.remote.flush-deadline", "soon"}, "flush-deadline"},
		{"unknown flag", []string{"--no-such-flag"}, "unknown long flag"},
		{"read-only agent path", []string{"agent", "--config.file", good, "--storage.agent.path", filepath.Join(readOnlyDir(t), "data")}, "storage.agent.path"},
		{"read-only sidecar path", []string{"sidecar", "--config.file", good, "--wal.dir", walDir, "--storage.agent.path", readOnlyDir(t)}, "is not writable"},
		{"listen address", []string{"sidecar", "--config.file", good, "--wal.dir", walDir, "--storage.agent.path", t.TempDir(), "--web.listen-address", "256.0.0.1:0"}, "web.listen-address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := walship(t, tc.args...)
			require.Equal(t, 2, code, stderr)
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stderr, "panic")
			require.NotContains(t, stderr, "goroutine ")
		})
	}
}

// A remote URL whose host does not resolve (or whose scheme is unknown)
// loads; walship keeps retrying, stays ready, and exits 0 on SIGTERM
// within the flush deadline.
func TestUnreachableURLIsRetried(t *testing.T) {
	for _, url := range []string{"http://walship-test.invalid:9/write", "gopher://127.0.0.1:1/write"} {
		t.Run(url, func(t *testing.T) {
			work := t.TempDir()
			cfg := writeFile(t, filepath.Join(work, "walship.yml"), `
global:
  scrape_interval: 100ms
  scrape_timeout: 100ms
scrape_configs:
  - job_name: none
    static_configs: [{targets: ["127.0.0.1:1"]}]
remote_write:
`+remoteWrite("unreachable", url))
			p := start(t, work, true, "--config.file", cfg, "--storage.remote.flush-deadline", "1s")
			require.Eventually(t, func() bool {
				code, _ := p.get("/-/ready")
				return code == 200 && p.metric(`prometheus_wal_watcher_records_read_total{consumer="unreachable",type="samples"}`) > 0
			}, 20*time.Second, 50*time.Millisecond)
			require.False(t, p.exited())
			p.signal(syscall.SIGTERM)
			require.Equal(t, 0, p.wait(15*time.Second))
		})
	}
}

// A Prometheus agent's scrape_configs load whatever discovery they use:
// here DNS and Kubernetes (neither reachable: discovery just finds no
// targets), next to a static target that is scraped.
func TestEveryDiscoveryMechanismLoads(t *testing.T) {
	tg := newTarget(t)
	recv := testkit.NewReceiver(t)
	work := t.TempDir()
	cfg := writeFile(t, filepath.Join(work, "walship.yml"), fmt.Sprintf(`global:
  scrape_interval: 100ms
  scrape_timeout: 100ms
scrape_configs:
  - job_name: target
    static_configs: [{targets: [%q]}]
  - job_name: dns
    dns_sd_configs: [{names: [walship-test.invalid], type: A, port: 9100}]
  - job_name: kubernetes
    kubernetes_sd_configs: [{role: pod, api_server: "http://127.0.0.1:1"}]
remote_write:
%s`, tg.host(), remoteWrite("r", recv.URL)))
	p := start(t, work, true, "--config.file", cfg)
	require.Eventually(t, func() bool { return len(scrapeValues(recv)) > 0 }, 20*time.Second, 10*time.Millisecond)
	p.signal(syscall.SIGTERM)
	require.Equal(t, 0, p.wait(15*time.Second))
}
