//go:build !nosd

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/util/logging"

	"github.com/walship/walship/remote"
	"github.com/walship/walship/storage"
	"github.com/walship/walship/wal/record"
)

// This file runs the agent: discovery and scraping, as cmd/prometheus
// wires them, into walship's storage and remote write. A binary built
// with the nosd tag leaves it out (and with it Prometheus's service
// discovery) and runs walship-agent instead (agent_exec.go).

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

	conf, err := loadConfig(c.common.configFile, agentScope, logger)
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
	var db *storage.DB // opened below, before the endpoints start (ApplyConfig)
	rs := remote.New(remote.Options{
		WALDir:        filepath.Join(c.common.agentPath, "wal"),
		PositionsDir:  filepath.Join(c.common.agentPath, "walship-positions"),
		FlushDeadline: c.common.deadline(),
		Committed:     func() record.Position { return db.Committed() },
		Logger:        logger.With("component", "remote"),
		Registerer:    reg,
	})
	sopts.Registerer = reg
	sopts.Notify = rs.Notify
	sopts.Acked = rs.AckedPositions
	db, err = storage.Open(c.common.agentPath, sopts)
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
