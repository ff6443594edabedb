package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// This file is the senders a scenario runs, walship's and upstream's, and
// the configuration they share.

// Binaries are the programs the scenarios run.
type Binaries struct {
	Walship        string // bin/walship
	UpstreamSender string // bin/upstream-sender (bench/cmd/upstream-sender)
	Prometheus     string // bin/prometheus (make bench-build-agent), for prometheus --agent
}

// Sender is a program that ships a WAL: a sidecar over a server's TSDB or
// an agent scraping targets.
type Sender struct {
	Name    string
	Walship bool // walship's, not upstream's
	Agent   bool // scrapes targets into a WAL of its own
	Reloads bool // reloads its configuration on SIGHUP
	// truncating are an agent's flags for kill-truncate: a truncation (a
	// checkpoint, segments deleted) every 2 s, segments as small as it
	// allows.
	truncating []string
	// argv is the command line: config file, the TSDB's directory
	// (sidecars), the sender's own data directory.
	argv func(b Binaries, config, tsdbDir, dataDir string) []string
	// wal is the WAL the accounting reads.
	wal func(tsdbDir, dataDir string) string
}

// Senders are the senders by name.
var Senders = map[string]Sender{
	"sidecar": {Name: "walship sidecar", Walship: true, Reloads: true,
		argv: func(b Binaries, config, tsdbDir, dataDir string) []string {
			return []string{b.Walship, "sidecar", "--config.file=" + config, "--wal.dir=" + filepath.Join(tsdbDir, "wal"),
				"--storage.agent.path=" + dataDir, "--web.listen-address=127.0.0.1:0"}
		},
		wal: func(tsdbDir, _ string) string { return filepath.Join(tsdbDir, "wal") }},
	// upstream-sidecar is upstream's remote storage over the server's WAL,
	// as the server itself runs it (upstream-sender --wal.live).
	"upstream-sidecar": {Name: "upstream sender",
		argv: func(b Binaries, config, tsdbDir, _ string) []string {
			return []string{b.UpstreamSender, "--config.file=" + config, "--storage.path=" + tsdbDir, "--wal.live"}
		},
		wal: func(tsdbDir, _ string) string { return filepath.Join(tsdbDir, "wal") }},
	"agent": {Name: "walship agent", Walship: true, Agent: true, Reloads: true,
		argv: func(b Binaries, config, _, dataDir string) []string {
			return []string{b.Walship, "agent", "--config.file=" + config, "--storage.agent.path=" + dataDir,
				"--web.listen-address=127.0.0.1:0"}
		},
		wal:        func(_, dataDir string) string { return filepath.Join(dataDir, "wal") },
		truncating: []string{"--storage.agent.wal-truncate-frequency=2s", "--storage.agent.wal-segment-size=1MB"}},
	"prometheus-agent": {Name: "prometheus --agent", Agent: true, Reloads: true,
		argv: func(b Binaries, config, _, dataDir string) []string {
			return []string{b.Prometheus, "--agent", "--config.file=" + config, "--storage.agent.path=" + dataDir,
				"--web.listen-address=127.0.0.1:0"}
		},
		wal:        func(_, dataDir string) string { return filepath.Join(dataDir, "wal") },
		truncating: []string{"--storage.agent.wal-truncate-frequency=2s", "--storage.agent.wal-segment-size=10MB"}}, // its smallest
}

// remoteTimeout is the scenarios' remote_timeout: shorter than the
// recorder's slow answers.
const remoteTimeout = "2s"

// writeConfig writes the senders' configuration: one remote_write entry
// to url (default queue_config) and the entries of extra (YAML list
// items), and for agents one scrape job over the targets, every interval.
func writeConfig(path, url, protocol string, tg *targets, interval, extra string) error {
	var b strings.Builder
	if tg != nil {
		fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\nscrape_configs:\n  - job_name: reliability\n    honor_labels: true\n    static_configs:\n", interval, interval)
		for i := range tg.n {
			fmt.Fprintf(&b, "      - targets: [%q]\n        labels: {__metrics_path__: /metrics/%d, target: \"%d\"}\n", tg.addr(), i, i)
		}
	}
	fmt.Fprintf(&b, "remote_write:\n%s", remoteWrite("recorder", url, protocol, ""))
	b.WriteString(extra)
	tmp := path + ".tmp" // a reload never reads half a file
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// remoteWrite is a remote_write entry (a YAML list item) named name with
// the scenarios' remote_timeout and the given queue_config (YAML flow
// mapping, "" for the default).
func remoteWrite(name, url, protocol, queueConfig string) string {
	msg := "prometheus.WriteRequest"
	if protocol == "rw2" {
		msg = "io.prometheus.write.v2.Request"
	}
	e := fmt.Sprintf("  - url: %s\n    name: %s\n    remote_timeout: %s\n    protobuf_message: %s\n", url, name, remoteTimeout, msg)
	if queueConfig != "" {
		e += "    queue_config: " + queueConfig + "\n"
	}
	return e
}
