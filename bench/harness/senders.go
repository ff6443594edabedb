package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/walship/walship/bench/targets"
)

// Binaries are the programs the harness runs.
type Binaries struct {
	Walship        string // the walship binary (make build: bin/walship)
	UpstreamSender string // bench/cmd/upstream-sender
	Receiver       string // bench/cmd/receiver
	Targets        string // bench/cmd/targets, for the agents
	Prometheus     string // upstream's cmd/prometheus (make bench-build-agent), for prometheus-agent
}

// FindBinaries looks for the bench programs next to the running
// executable (make bench-build builds them all into bin/; make
// bench-build-agent adds prometheus). Prometheus need not exist unless
// prometheus-agent runs.
func FindBinaries(walship string) (Binaries, error) {
	self, err := os.Executable()
	if err != nil {
		return Binaries{}, err
	}
	dir := filepath.Dir(self)
	b := Binaries{Walship: walship, UpstreamSender: filepath.Join(dir, "upstream-sender"), Receiver: filepath.Join(dir, "receiver"),
		Targets: filepath.Join(dir, "targets"), Prometheus: filepath.Join(dir, "prometheus")}
	for _, p := range []string{b.Walship, b.UpstreamSender, b.Receiver, b.Targets} {
		if _, err := os.Stat(p); err != nil {
			return Binaries{}, fmt.Errorf("%w (build them with make bench-build)", err)
		}
	}
	return b, nil
}

// Sender is a program that ships a WAL, as a user runs it, or an agent
// that scrapes the shape's targets (package targets) and ships what it
// wrote to its own WAL.
type Sender struct {
	// Name is "upstream", "prometheus-agent" or the walship command
	// ("replay", "sidecar", "agent").
	Name string
	// Baseline is the upstream sender this one is compared with; empty
	// for upstream's own.
	Baseline string
	// Exits says the program stops by itself once the endpoint
	// acknowledged everything; otherwise the harness stops it with
	// SIGTERM as soon as the receiver has every sample.
	Exits bool
	// Agent says the program scrapes the targets instead of reading the
	// shape's WAL.
	Agent bool
	argv  func(b Binaries, config, walDir, dataDir string) []string
}

// Walship reports whether s is one of walship's commands.
func (s Sender) Walship() bool { return s.Baseline != "" }

// The senders.
var (
	// Upstream is Prometheus v0.316.0's remote storage (watcher and
	// QueueManager) shipping the WAL (see bench/cmd/upstream-sender).
	Upstream = Sender{Name: "upstream", argv: func(b Binaries, config, walDir, dataDir string) []string {
		return []string{b.UpstreamSender, "--config.file=" + config, "--storage.path=" + dataDir, "--wal.source=" + walDir}
	}}
	// Replay is `walship replay`: ship the whole WAL once and exit.
	Replay = Sender{Name: "replay", Baseline: Upstream.Name, Exits: true, argv: func(b Binaries, config, walDir, dataDir string) []string {
		return []string{b.Walship, "replay", "--config.file=" + config, "--wal.dir=" + walDir, "--storage.agent.path=" + dataDir}
	}}
	// Sidecar is `walship sidecar --wal.start=beginning`: tail the WAL
	// from its oldest data, as after a first start beside a server.
	Sidecar = Sender{Name: "sidecar", Baseline: Upstream.Name, argv: func(b Binaries, config, walDir, dataDir string) []string {
		return []string{b.Walship, "sidecar", "--config.file=" + config, "--wal.dir=" + walDir, "--wal.start=beginning", "--storage.agent.path=" + dataDir}
	}}
	// PrometheusAgent is `prometheus --agent` v0.316.0 (upstream's own
	// cmd/prometheus), scraping the targets.
	PrometheusAgent = Sender{Name: "prometheus-agent", Agent: true, argv: func(b Binaries, config, _, dataDir string) []string {
		return []string{b.Prometheus, "--agent", "--config.file=" + config, "--storage.agent.path=" + dataDir, "--web.listen-address=127.0.0.1:0"}
	}}
	// Agent is `walship agent`, scraping the targets.
	Agent = Sender{Name: "agent", Baseline: PrometheusAgent.Name, Agent: true, argv: func(b Binaries, config, _, dataDir string) []string {
		return []string{b.Walship, "agent", "--config.file=" + config, "--storage.agent.path=" + dataDir, "--web.listen-address=127.0.0.1:0"}
	}}
	senders = map[string]Sender{Upstream.Name: Upstream, Replay.Name: Replay, Sidecar.Name: Sidecar,
		PrometheusAgent.Name: PrometheusAgent, Agent.Name: Agent}
)

// ParseSenders parses a comma-separated list of sender names.
func ParseSenders(list string) ([]Sender, error) {
	var out []Sender
	for name := range strings.SplitSeq(list, ",") {
		s, ok := senders[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("unknown sender %q (upstream, replay, sidecar, prometheus-agent, agent)", name)
		}
		out = append(out, s)
	}
	return out, nil
}

// Cell is one configuration every sender ships the WAL with.
type Cell struct {
	Protocol  string `json:"protocol"`   // "rw1" or "rw2"
	MaxShards int    `json:"max_shards"` // 0: the default queue_config
	Endpoints int    `json:"endpoints"`  // remote_write entries, all to the receiver
	// Distinct gives each entry write_relabel_configs of its own (a drop
	// rule naming a metric the WAL does not hold), so that entries differ
	// in configuration but not in what they send.
	Distinct bool `json:"distinct,omitempty"`
}

func (c Cell) String() string {
	shards := "default shards"
	if c.MaxShards > 0 {
		shards = fmt.Sprintf("max_shards %d", c.MaxShards)
	}
	s := strings.ToUpper(c.Protocol) + ", " + shards
	if c.Endpoints > 1 {
		s += fmt.Sprintf(", %d endpoints", c.Endpoints)
	}
	if c.Distinct {
		s += ", distinct relabelling"
	}
	return s
}

// config is the Prometheus configuration both senders of a WAL read: the
// cell's remote_write entries, everything else default.
func (c Cell) config(url string) string {
	var b strings.Builder
	c.remoteWrite(&b, url, false)
	return b.String()
}

func (c Cell) remoteWrite(b *strings.Builder, url string, dropReport bool) {
	b.WriteString("remote_write:\n")
	for i := range max(c.Endpoints, 1) {
		fmt.Fprintf(b, "  - url: %s\n    name: endpoint-%d\n", url, i+1)
		if c.Protocol == "rw2" {
			b.WriteString("    protobuf_message: io.prometheus.write.v2.Request\n")
		}
		if c.MaxShards > 0 {
			fmt.Fprintf(b, "    queue_config:\n      max_shards: %d\n", c.MaxShards)
		}
		var drop []string
		if dropReport {
			drop = append(drop, "up|scrape_.+")
		}
		if c.Distinct {
			drop = append(drop, fmt.Sprintf("not_in_the_wal_%d", i+1))
		}
		if len(drop) > 0 {
			fmt.Fprintf(b, "    write_relabel_configs:\n      - {source_labels: [__name__], regex: '%s', action: drop}\n", strings.Join(drop, "|"))
		}
	}
}

// agentConfig is the configuration both agents read: one job scraping
// every target of the shape (at targetsAddr, /metrics/N) every interval,
// keeping the labels and timestamps the targets expose, and the cell's
// remote_write entries, which leave out the series each scrape adds (up,
// scrape_*): their samples are the scrapes' own, not the shape's.
func (c Cell) agentConfig(url, targetsAddr string, n int, interval time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n", model.Duration(interval), model.Duration(interval))
	b.WriteString("scrape_configs:\n")
	b.WriteString(targets.ScrapeJob(targetsAddr, n))
	c.remoteWrite(&b, url, true)
	return b.String()
}
