package main

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/term"

	"github.com/walship/walship/internal/inspect"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/watcher"
)

// replayCommand ships every sample of a WAL directory once, to every
// remote_write endpoint, and exits when all of it was acknowledged.
type replayCommand struct {
	cmd    *kingpin.CmdClause
	common *commonFlags
	walDir string
}

func newReplayCommand(app *kingpin.Application, common *commonFlags) *replayCommand {
	c := &replayCommand{common: common}
	c.cmd = app.Command("replay", "Ship every sample of a WAL directory (checkpoint and all segments) to the configured remote_write endpoints and exit once all were acknowledged. Exits 1 when samples were refused for good or could not be sent (their series is missing from the WAL, or the WAL is damaged where they were), or when it was interrupted.")
	c.cmd.Flag("wal.dir", "WAL directory to replay (a Prometheus data/wal or data-agent/wal directory). Only read.").Required().StringVar(&c.walDir)
	return c
}

func (c *replayCommand) run() int {
	sig, stopSignals := signals()
	defer stopSignals()
	logger := c.common.logger()
	fail := func(err error) int {
		logger.Error("walship replay cannot start", "err", err)
		fmt.Fprintf(os.Stderr, "walship: %v\n", err)
		return exitError
	}
	if err := c.common.profiles.start(); err != nil {
		return fail(err)
	}
	defer c.common.profiles.stop(logger)
	conf, err := loadConfig(c.common.configFile, shipScope, logger)
	if err != nil {
		return fail(err)
	}
	if err := checkWALDir(c.walDir); err != nil {
		return fail(err)
	}

	// On a terminal, a progress bar; its total comes from a first pass
	// over the log (the same counts as `walship inspect`).
	var bar *progressBar
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar = &progressBar{w: os.Stderr, width: 30}
		if rep, err := inspect.Dir(wal.OS, c.walDir); err == nil {
			bar.total = float64(rep.Samples + rep.Histograms)
			if len(conf.RemoteWriteConfigs) > 0 {
				bar.total *= float64(len(conf.RemoteWriteConfigs))
			}
		}
	}

	// The queues' counters, read for the summary (and the bar): nothing
	// serves this registry, so it holds no Go or process collector.
	reg := prometheus.NewRegistry()
	rs := remote.New(remote.Options{
		WALDir:        c.walDir,
		Start:         watcher.FromBeginning,
		StopAtEnd:     true,
		FlushDeadline: c.common.deadline(),
		Logger:        logger.With("component", "remote"),
		Registerer:    reg,
	})
	begin := time.Now()
	if err := rs.ApplyConfig(conf); err != nil {
		rs.Close()
		return fail(err)
	}
	logger.Info("Replaying", "wal_dir", c.walDir, "endpoints", len(conf.RemoteWriteConfigs))
	if bar != nil {
		bar.start = begin
	}

	// The bar is redrawn ten times a second; without one the counts are
	// read once the replay ended (the counters stay until Close).
	var counts shipCounts
	var tick <-chan time.Time
	if bar != nil {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	interrupted := false
loop:
	for {
		select {
		case <-rs.Done():
			break loop
		case s := <-sig:
			if s == syscall.SIGHUP {
				continue
			}
			logger.Warn("Received an OS signal, flushing and exiting", "signal", s.String(), "deadline", c.common.deadline())
			interrupted = true
			break loop
		case <-tick:
			counts = maxCounts(counts, readCounts(reg))
			bar.draw(counts)
		}
	}
	counts = maxCounts(counts, readCounts(reg))
	c.common.profiles.stop(logger)
	rs.Close()
	counts = maxCounts(counts, readCounts(reg))
	if bar != nil {
		bar.finish()
	}

	elapsed := time.Since(begin)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = counts.sent() / s
	}
	fmt.Fprintf(os.Stderr, "replay: %.0f samples, %.0f histograms, %.0f exemplars sent; %.0f bytes on the wire; %s; %.0f samples/s; %.0f failed, %.0f dropped\n",
		counts.samples, counts.histograms, counts.exemplars, counts.bytes, elapsed.Round(time.Millisecond), rate, counts.failed, counts.dropped)
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "walship: replay interrupted before the whole WAL was acknowledged")
		return exitFailed
	case counts.failed > 0:
		fmt.Fprintf(os.Stderr, "walship: the endpoints refused %.0f samples for good\n", counts.failed)
		return exitFailed
	case counts.unknown > 0:
		// Relabelling and sample_age_limit drop on purpose; a sample whose
		// series is not in the WAL is lost.
		fmt.Fprintf(os.Stderr, "walship: %.0f samples were not sent: their series are not in the WAL\n", counts.unknown)
		return exitFailed
	case counts.damaged > 0:
		// Passed over to the next intact record; what it held is lost.
		fmt.Fprintf(os.Stderr, "walship: %.0f bytes of the WAL are damaged and were not sent (the log names each damaged place)\n", counts.damaged)
		return exitFailed
	}
	return exitOK
}
