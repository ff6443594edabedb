package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Binaries are the programs the harness runs.
type Binaries struct {
	Walship        string // the walship binary (make build: bin/walship)
	UpstreamSender string // bench/cmd/upstream-sender
	Receiver       string // bench/cmd/receiver
}

// FindBinaries looks for upstream-sender and receiver next to the running
// executable (make bench-e2e builds them all into bin/).
func FindBinaries(walship string) (Binaries, error) {
	self, err := os.Executable()
	if err != nil {
		return Binaries{}, err
	}
	dir := filepath.Dir(self)
	b := Binaries{Walship: walship, UpstreamSender: filepath.Join(dir, "upstream-sender"), Receiver: filepath.Join(dir, "receiver")}
	for _, p := range []string{b.Walship, b.UpstreamSender, b.Receiver} {
		if _, err := os.Stat(p); err != nil {
			return Binaries{}, fmt.Errorf("%w (build them with make bench-e2e)", err)
		}
	}
	return b, nil
}

// Sender is a program that ships a WAL, as a user runs it.
type Sender struct {
	// Name is "upstream" or the walship command ("replay", "sidecar").
	Name string
	// Exits says the program stops by itself once the endpoint
	// acknowledged everything; otherwise the harness stops it with
	// SIGTERM as soon as the receiver has every sample.
	Exits bool
	argv  func(b Binaries, config, walDir, dataDir string) []string
}

// Walship reports whether s is one of walship's commands.
func (s Sender) Walship() bool { return s.Name != Upstream.Name }

// The senders.
var (
	// Upstream is Prometheus v0.316.0's remote storage (watcher and
	// QueueManager) shipping the WAL (see bench/cmd/upstream-sender).
	Upstream = Sender{Name: "upstream", argv: func(b Binaries, config, walDir, dataDir string) []string {
		return []string{b.UpstreamSender, "--config.file=" + config, "--storage.path=" + dataDir, "--wal.source=" + walDir}
	}}
	// Replay is `walship replay`: ship the whole WAL once and exit.
	Replay = Sender{Name: "replay", Exits: true, argv: func(b Binaries, config, walDir, dataDir string) []string {
		return []string{b.Walship, "replay", "--config.file=" + config, "--wal.dir=" + walDir, "--storage.agent.path=" + dataDir}
	}}
	// Sidecar is `walship sidecar --wal.start=beginning`: tail the WAL
	// from its oldest data, as after a first start beside a server.
	Sidecar = Sender{Name: "sidecar", argv: func(b Binaries, config, walDir, dataDir string) []string {
		return []string{b.Walship, "sidecar", "--config.file=" + config, "--wal.dir=" + walDir, "--wal.start=beginning", "--storage.agent.path=" + dataDir}
	}}
	senders = map[string]Sender{Upstream.Name: Upstream, Replay.Name: Replay, Sidecar.Name: Sidecar}
)

// ParseSenders parses a comma-separated list of sender names.
func ParseSenders(list string) ([]Sender, error) {
	var out []Sender
	for name := range strings.SplitSeq(list, ",") {
		s, ok := senders[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("unknown sender %q (upstream, replay, sidecar)", name)
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
	return s
}

// config is the Prometheus configuration both senders read: the cell's
// remote_write entries, everything else default.
func (c Cell) config(url string) string {
	var b strings.Builder
	b.WriteString("remote_write:\n")
	for i := range max(c.Endpoints, 1) {
		fmt.Fprintf(&b, "  - url: %s\n    name: endpoint-%d\n", url, i+1)
		if c.Protocol == "rw2" {
			b.WriteString("    protobuf_message: io.prometheus.write.v2.Request\n")
		}
		if c.MaxShards > 0 {
			fmt.Fprintf(&b, "    queue_config:\n      max_shards: %d\n", c.MaxShards)
		}
	}
	return b.String()
}
