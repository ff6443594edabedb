package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/prometheus/config"
	"go.yaml.in/yaml/v2"

	"github.com/walship/walship/wal"
)

// Defaults of the flags every command shares. The listen address has port
// 0 (a free port, logged at start) so that many walships run side by side
// without flags; pass --web.listen-address=0.0.0.0:9090 to be reached where
// a Prometheus agent would be.
const (
	defaultConfigFile    = "walship.yml"
	defaultListenAddress = "127.0.0.1:0"
	defaultAgentPath     = "data-agent/"
)

// commonFlags are the flags of the agent, sidecar and replay commands,
// named and behaving as Prometheus's.
type commonFlags struct {
	configFile      string
	listenAddress   string
	webConfigFile   string
	enableLifecycle bool
	agentPath       string
	flushDeadline   model.Duration
	log             promslog.Config
	profiles        profileFlags
}

func addCommonFlags(app *kingpin.Application) *commonFlags {
	f := &commonFlags{}
	app.Flag("config.file", "Prometheus configuration file (agent mode: global, scrape_configs, remote_write).").
		Default(defaultConfigFile).StringVar(&f.configFile)
	app.Flag("web.listen-address", "Address for /metrics, /-/healthy, /-/ready and /-/reload. Port 0 picks a free port; the address is logged.").
		Default(defaultListenAddress).StringVar(&f.listenAddress)
	app.Flag("web.config.file", "[EXPERIMENTAL] Path to a configuration file that can enable TLS or authentication (exporter-toolkit format).").
		Default("").StringVar(&f.webConfigFile)
	app.Flag("web.enable-lifecycle", "Serve /-/reload and /-/quit (POST or PUT), as Prometheus does only when asked.").
		Default("false").BoolVar(&f.enableLifecycle)
	app.Flag("storage.agent.path", "Base path for walship's own data: the agent's WAL and every command's acknowledged positions.").
		Default(defaultAgentPath).StringVar(&f.agentPath)
	app.Flag("storage.remote.flush-deadline", "How long to wait flushing samples on shutdown or config reload.").
		Default("1m").SetValue(named("storage.remote.flush-deadline", &f.flushDeadline))
	app.Flag("debug.cpuprofile", "Write a CPU profile of the whole run to this file.").Hidden().StringVar(&f.profiles.cpu)
	app.Flag("debug.memprofile", "Write the heap profile of the largest live heap of the run to this file.").Hidden().StringVar(&f.profiles.heap)
	f.log.Level = promslog.NewLevel()
	f.log.Format = promslog.NewFormat()
	promslogflag.AddFlags(app, &f.log)
	return f
}

func (f *commonFlags) logger() *slog.Logger {
	f.log.Writer = os.Stderr
	return promslog.New(&f.log)
}

func (f *commonFlags) deadline() time.Duration { return time.Duration(f.flushDeadline) }

// configScope says what a command reads of the configuration file.
type configScope int

const (
	// agentScope reads it as Prometheus's agent mode does: every section,
	// scrape_configs with their service discovery included.
	agentScope configScope = iota
	// shipScope reads global and remote_write, and ignores the other
	// sections (sidecar and replay ship a WAL; the file is often the
	// Prometheus server's own, with its scrape_configs, rule_files and
	// alerting). It refuses a file without remote_write: nothing to do.
	shipScope
)

// shipSections are the top-level sections shipScope reads.
var shipSections = []string{"global", "remote_write"}

// loadConfig reads the configuration file for a command of the given
// scope.
func loadConfig(filename string, scope configScope, logger *slog.Logger) (*config.Config, error) {
	fail := func(err error) (*config.Config, error) {
		return nil, fmt.Errorf("couldn't load configuration (--config.file=%q): %w", filename, err)
	}
	if scope == agentScope {
		conf, err := config.LoadFile(filename, true, logger)
		if err != nil {
			return fail(err)
		}
		if _, err := conf.GetScrapeConfigs(); err != nil {
			return nil, fmt.Errorf("couldn't load scrape configs (--config.file=%q): %w", filename, err)
		}
		return conf, nil
	}
	content, err := os.ReadFile(filename)
	if err != nil {
		return fail(err)
	}
	var doc yaml.MapSlice
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return fail(fmt.Errorf("parsing YAML file %s: %w", filename, err))
	}
	kept := doc[:0]
	for _, item := range doc {
		if name, ok := item.Key.(string); ok && slices.Contains(shipSections, name) {
			kept = append(kept, item)
		}
	}
	out, err := yaml.Marshal(kept)
	if err != nil {
		return fail(err)
	}
	conf, err := config.Load(string(out), logger)
	if err != nil {
		return fail(fmt.Errorf("parsing YAML file %s: %w", filename, err))
	}
	conf.SetDirectory(filepath.Dir(filename))
	if len(conf.RemoteWriteConfigs) == 0 {
		return nil, fmt.Errorf("configuration %q has no remote_write section: nothing to ship to", filename)
	}
	return conf, nil
}

// checkWritableDir creates dir if needed and makes sure files can be
// created in it, so that a read-only path fails at start, not at the first
// position save.
func checkWritableDir(flag, dir string) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("--%s=%s is not writable: %w", flag, dir, err)
	}
	f, err := os.CreateTemp(dir, ".walship-write-test-*")
	if err != nil {
		return fmt.Errorf("--%s=%s is not writable: %w", flag, dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("--%s=%s is not writable: %w", flag, dir, err)
	}
	return nil
}

// checkWALDir makes sure dir is a WAL directory: it exists and holds a
// segment or a checkpoint. Other files in it are ignored.
func checkWALDir(dir string) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--wal.dir=%s does not exist", dir)
	case err != nil:
		return fmt.Errorf("--wal.dir=%s: %w", dir, err)
	case !info.IsDir():
		return fmt.Errorf("--wal.dir=%s is not a directory", dir)
	}
	if isWAL(dir) {
		return nil
	}
	msg := fmt.Sprintf("--wal.dir=%s is not a WAL directory: it holds no segments (00000000, ...) and no checkpoint", dir)
	if sub := filepath.Join(dir, "wal"); isWAL(sub) {
		msg += fmt.Sprintf("; did you mean --wal.dir=%s?", sub)
	}
	return errors.New(msg)
}

func isWAL(dir string) bool {
	segs, err := wal.ListSegments(wal.OS, dir)
	if err == nil && len(segs) > 0 {
		return true
	}
	_, err = wal.LastCheckpoint(wal.OS, dir)
	return err == nil
}

// namedValue is a flag value whose parse errors name the flag (kingpin's
// do not).
type namedValue struct {
	name string
	kingpin.Value
}

func named(name string, v kingpin.Value) kingpin.Value { return namedValue{name, v} }

func (n namedValue) Set(s string) error {
	if err := n.Value.Set(s); err != nil {
		return fmt.Errorf("--%s=%s: %w", n.name, s, err)
	}
	return nil
}
