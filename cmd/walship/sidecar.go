package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/alecthomas/kingpin/v2"

	"github.com/walship/walship/remote"
	"github.com/walship/walship/watcher"
)

// sidecarCommand tails the WAL of a running Prometheus server, read-only,
// and ships it to every remote_write endpoint.
type sidecarCommand struct {
	cmd    *kingpin.CmdClause
	common *commonFlags
	walDir string
	start  string
}

func newSidecarCommand(app *kingpin.Application, common *commonFlags) *sidecarCommand {
	c := &sidecarCommand{common: common}
	c.cmd = app.Command("sidecar", "Tail the WAL of a running Prometheus server (read-only) and ship it to the configured remote_write endpoints. Positions are kept under --storage.agent.path, never in the WAL directory.")
	c.cmd.Flag("wal.dir", "WAL directory of the Prometheus server (its data/wal).").Required().StringVar(&c.walDir)
	c.cmd.Flag("wal.start", `Where shipping starts: "position" (the saved position, else the oldest data in the WAL), "beginning" (the oldest data, at every start) or "now" (only what is written after each start, as upstream Prometheus).`).
		Default("position").StringVar(&c.start)
	return c
}

// sidecarPositionsDir is where the sidecar keeps positions for walDir: one
// directory per WAL, so that sidecars of several servers can share
// --storage.agent.path.
func sidecarPositionsDir(agentPath, walDir string) string {
	abs, err := filepath.Abs(walDir)
	if err != nil {
		abs = walDir
	}
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return filepath.Join(agentPath, "sidecar-positions", hex.EncodeToString(sum[:6]))
}

func (c *sidecarCommand) run() int {
	sig, stopSignals := signals()
	defer stopSignals()
	logger := c.common.logger()
	fail := func(err error) int {
		logger.Error("walship sidecar cannot start", "err", err)
		fmt.Fprintf(os.Stderr, "walship: %v\n", err)
		return exitError
	}

	if err := c.common.profiles.start(); err != nil {
		return fail(err)
	}
	defer c.common.profiles.stop(logger)

	start, err := watcher.ParseStart(c.start)
	if err != nil {
		return fail(fmt.Errorf("--wal.start=%s: %w", c.start, err))
	}
	conf, err := loadConfig(c.common.configFile, shipScope, logger)
	if err != nil {
		return fail(err)
	}
	if err := checkWALDir(c.walDir); err != nil {
		return fail(err)
	}
	positions := sidecarPositionsDir(c.common.agentPath, c.walDir)
	if err := checkWritableDir("storage.agent.path", positions); err != nil {
		return fail(err)
	}

	reg := newRegistry()
	rs := remote.New(remote.Options{
		WALDir:        c.walDir,
		PositionsDir:  positions,
		Start:         start,
		FlushDeadline: c.common.deadline(),
		Logger:        logger.With("component", "remote"),
		Registerer:    reg,
	})
	if err := rs.ApplyConfig(conf); err != nil {
		rs.Close()
		return fail(err)
	}
	web, err := startWeb(c.common, reg, logger, nil)
	if err != nil {
		rs.Close()
		return fail(err)
	}
	logger.Info("Sidecar shipping", "wal_dir", c.walDir, "positions", positions, "start", start.String(), "endpoints", len(conf.RemoteWriteConfigs))

	d := &daemon{flags: c.common, log: logger, web: web, scope: shipScope, apply: rs.ApplyConfig}
	loopErr := d.loop(sig)
	c.common.profiles.stop(logger)

	logger.Info("Flushing remote write queues", "deadline", c.common.deadline())
	rs.Close()
	web.shutdown()
	if loopErr != nil {
		logger.Error("walship sidecar stopped", "err", loopErr)
		return exitFailed
	}
	logger.Info("See you next time!")
	return exitOK
}
