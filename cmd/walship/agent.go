package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/util/logging"

	"github.com/walship/walship/remote"
	"github.com/walship/walship/storage"
	"github.com/walship/walship/wal"
)

// agentCommand is `prometheus --agent` with walship's storage and remote
// write: it scrapes scrape_configs into a WAL under --storage.agent.path
// and ships that WAL to every remote_write endpoint.
type agentCommand struct {
	cmd    *kingpin.CmdClause
	common *commonFlags

	segmentSize       units.Base2Bytes
	compress          bool
	compression       string
	truncateFrequency model.Duration
	minWALTime        model.Duration
	maxWALTime        model.Duration
	maxWALBytes       units.Base2Bytes
	agentMode         bool
}

func newAgentCommand(app *kingpin.Application, common *commonFlags) *agentCommand {
	c := &agentCommand{common: common}
	c.cmd = app.Command("agent", "Scrape the configured targets into a WAL under --storage.agent.path and ship it to the remote_write endpoints (the default command).").Default()
	// Storage flags are the application's, as in Prometheus, so that they
	// work without naming the command.
	app.Flag("agent", "Accepted for compatibility with `prometheus --agent`; walship always runs in agent mode.").Hidden().BoolVar(&c.agentMode)
	app.Flag("storage.agent.wal-segment-size", "Size at which to split WAL segment files. Example: 100MB").
		Hidden().PlaceHolder("<bytes>").SetValue(named("storage.agent.wal-segment-size", (*bytesValue)(&c.segmentSize)))
	app.Flag("storage.agent.wal-compression", "Compress the agent WAL.").Default("true").BoolVar(&c.compress)
	app.Flag("storage.agent.wal-compression-type", "Compression algorithm for the agent WAL, used when --storage.agent.wal-compression is true.").
		Hidden().Default("snappy").EnumVar(&c.compression, "snappy", "zstd")
	app.Flag("storage.agent.wal-truncate-frequency", "The frequency at which to truncate the WAL and remove old data.").
		Hidden().Default("2h").SetValue(named("storage.agent.wal-truncate-frequency", &c.truncateFrequency))
	app.Flag("storage.agent.retention.min-time", "Minimum age samples may be before being considered for deletion when the WAL is truncated.").
		Default("5m").SetValue(named("storage.agent.retention.min-time", &c.minWALTime))
	app.Flag("storage.agent.retention.max-time", "Maximum age samples may be before being forcibly deleted when the WAL is truncated.").
		Default("4h").SetValue(named("storage.agent.retention.max-time", &c.maxWALTime))
	app.Flag("storage.agent.retention.size", "Disk budget of the agent WAL (e.g. 10GB). Past it the oldest segments are deleted even if an endpoint has not sent them; the loss is counted and logged. 0 means unlimited.").
		Default("0").SetValue(named("storage.agent.retention.size", (*bytesValue)(&c.maxWALBytes)))
	return c
}

func (c *agentCommand) storageOptions(logger *slog.Logger) (storage.Options, error) {
	o := storage.Options{
		Logger:            logger.With("component", "storage"),
		SegmentSize:       int(c.segmentSize),
		TruncateFrequency: time.Duration(c.truncateFrequency),
		MinWALTime:        time.Duration(c.minWALTime),
		MaxWALTime:        time.Duration(c.maxWALTime),
		MaxWALBytes:       int64(c.maxWALBytes),
		Compression:       wal.None,
	}
	if c.compress {
		comp, err := wal.ParseCompression(c.compression)
		if err != nil {
			return o, err
		}
		o.Compression = comp
	}
	return o, nil
}

func (c *agentCommand) run() int { return c.runWith(agentHooks{}) }

// agentHooks let the demo command run the agent with its own listener and
// watch it while it runs.
type agentHooks struct {
	listener net.Listener                          // nil: listen on --web.listen-address
	started  func(reg *prometheus.Registry) func() // called once running; returns a stop function
}

func (c *agentCommand) runWith(hooks agentHooks) int {
	sig, stopSignals := signals()
	defer stopSignals()
	logger := c.common.logger()
	fail := func(err error) int {
		logger.Error("walship agent cannot start", "err", err)
		fmt.Fprintf(os.Stderr, "walship: %v\n", err)
		return exitError
	}
	if err := c.common.profiles.start(); err != nil {
		return fail(err)
	}
	defer c.common.profiles.stop(logger)

	conf, err := loadConfig(c.common.configFile, false, logger)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && c.common.configFile == defaultConfigFile {
			err = fmt.Errorf("%w (pass --config.file, or try `walship demo`, which needs no configuration)", err)
		}
		return fail(err)
	}
	if len(conf.RemoteWriteConfigs) == 0 {
		logger.Warn("No remote_write endpoints configured: samples are kept in the WAL only until truncation", "config", c.common.configFile)
	}
	if err := checkWritableDir("storage.agent.path", c.common.agentPath); err != nil {
		return fail(err)
	}
	sopts, err := c.storageOptions(logger)
	if err != nil {
		return fail(err)
	}

	reg := newRegistry()
	rs := remote.New(remote.Options{
		WALDir:        filepath.Join(c.common.agentPath, "wal"),
		PositionsDir:  filepath.Join(c.common.agentPath, "walship-positions"),
		FlushDeadline: c.common.deadline(),
		Logger:        logger.With("component", "remote"),
		Registerer:    reg,
	})
	sopts.Registerer = reg
	sopts.Notify = rs.Notify
	sopts.Acked = rs.AckedPositions
	db, err := storage.Open(c.common.agentPath, sopts)
	if err != nil {
		rs.Close()
		return fail(fmt.Errorf("opening agent storage in --storage.agent.path=%s: %w", c.common.agentPath, err))
	}
	logger.Info("Agent WAL opened", "dir", db.WALDir())

	// Discovery and scraping, as cmd/prometheus wires them, except that
	// targets are taken at once instead of after the first 5 s tick.
	ctxScrape, cancelScrape := context.WithCancel(context.Background())
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		cancelScrape()
		db.Close()
		rs.Close()
		return fail(err)
	}
	discoveryManager := discovery.NewManager(ctxScrape, logger.With("component", "discovery manager scrape"), reg, sdMetrics, discovery.Name("scrape"))
	scrapeManager, err := scrape.NewManager(&scrape.Options{
		AppendMetadata:           true,
		DiscoveryReloadOnStartup: true,
	}, logger.With("component", "scrape manager"), logging.NewJSONFileLogger,
		teeAppendable{primary: db, secondary: rs}, nil, reg)
	if err != nil || discoveryManager == nil {
		cancelScrape()
		db.Close()
		rs.Close()
		if err == nil {
			err = fmt.Errorf("cannot create the scrape discovery manager")
		}
		return fail(err)
	}

	apply := func(conf *config.Config) error {
		if err := rs.ApplyConfig(conf); err != nil {
			return fmt.Errorf("remote_write: %w", err)
		}
		if err := scrapeManager.ApplyConfig(conf); err != nil {
			return fmt.Errorf("scrape_configs: %w", err)
		}
		scfgs, err := conf.GetScrapeConfigs()
		if err != nil {
			return err
		}
		sd := make(map[string]discovery.Configs, len(scfgs))
		for _, sc := range scfgs {
			sd[sc.JobName] = sc.ServiceDiscoveryConfigs
		}
		if err := discoveryManager.ApplyConfig(sd); err != nil {
			return fmt.Errorf("service discovery: %w", err)
		}
		return nil
	}
	shutdownStorage := func() {
		c.common.profiles.stop(logger)
		logger.Info("Flushing remote write queues", "deadline", c.common.deadline())
		rs.Close()
		if err := db.Close(); err != nil {
			logger.Error("Closing agent storage", "err", err)
		}
	}
	if err := apply(conf); err != nil {
		cancelScrape()
		shutdownStorage()
		return fail(err)
	}

	web, err := startWeb(c.common, reg, logger, hooks.listener)
	if err != nil {
		cancelScrape()
		shutdownStorage()
		return fail(err)
	}

	fatal := make(chan error, 3)
	var wg sync.WaitGroup
	ctxDB, cancelDB := context.WithCancel(context.Background())
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := db.Run(ctxDB); err != nil && ctxDB.Err() == nil {
			fatal <- fmt.Errorf("agent storage: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := discoveryManager.Run(); err != nil && ctxScrape.Err() == nil {
			fatal <- fmt.Errorf("discovery manager: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := scrapeManager.Run(discoveryManager.SyncCh()); err != nil {
			fatal <- fmt.Errorf("scrape manager: %w", err)
		}
	}()
	logger.Info("Agent started", "storage", c.common.agentPath, "endpoints", len(conf.RemoteWriteConfigs))

	stopHook := func() {}
	if hooks.started != nil {
		stopHook = hooks.started(reg)
	}
	d := &daemon{flags: c.common, log: logger, web: web, apply: apply, fatal: fatal}
	loopErr := d.loop(sig)

	// Stop scraping first, then flush what was scraped, then close the WAL.
	logger.Info("Stopping scrape manager...")
	scrapeManager.Stop()
	cancelScrape()
	cancelDB()
	wg.Wait()
	shutdownStorage()
	stopHook()
	web.shutdown()
	if loopErr != nil {
		logger.Error("walship agent stopped", "err", loopErr)
		return exitFailed
	}
	logger.Info("See you next time!")
	return exitOK
}

// bytesValue is a byte size flag ("100MB", "1GiB").
type bytesValue units.Base2Bytes

func (b *bytesValue) Set(s string) error {
	v, err := units.ParseBase2Bytes(s)
	if err != nil {
		return err
	}
	*b = bytesValue(v)
	return nil
}

func (b *bytesValue) String() string { return units.Base2Bytes(*b).String() }
