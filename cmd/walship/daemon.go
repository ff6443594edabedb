package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/prometheus/config"
)

// signals returns a channel that receives SIGINT, SIGTERM and SIGHUP from
// now on; commands call it first, so that a signal during start-up is
// handled too.
func signals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// daemon is the main loop the agent and the sidecar share: it reloads the
// configuration on SIGHUP and /-/reload and returns on SIGINT, SIGTERM,
// /-/quit or a fatal error of a component.
type daemon struct {
	flags *commonFlags
	log   *slog.Logger
	web   *webServer
	scope configScope                // what the command reads of the file
	apply func(*config.Config) error // applies a loaded configuration
	fatal <-chan error               // a component stopped for good; nil when none
}

// loop runs until the process is asked to stop; it returns the error of a
// component that failed, nil after a signal or /-/quit.
func (d *daemon) loop(sig <-chan os.Signal) error {
	d.web.ready.Store(true)
	defer d.web.stopAnswering()
	d.log.Info("Server is ready to receive web requests.")
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				_ = d.reload()
				continue
			}
			d.log.Warn("Received an OS signal, exiting gracefully...", "signal", s.String())
			return nil
		case res := <-d.web.reload:
			res <- d.reload()
		case <-d.web.quit:
			d.log.Warn("Received termination request via web service, exiting gracefully...")
			return nil
		case err := <-d.web.served:
			if err == nil {
				err = errors.New("web server stopped")
			}
			d.web.served <- err // for shutdown
			return err
		case err := <-d.fatal:
			return err
		}
	}
}

// reload loads the configuration file again and applies it; on error the
// running configuration stays.
func (d *daemon) reload() error {
	d.log.Info("Loading configuration file", "filename", d.flags.configFile)
	conf, err := loadConfig(d.flags.configFile, d.scope, d.log)
	if err == nil {
		err = d.apply(conf)
	}
	if err != nil {
		d.log.Error("Error reloading config; the running configuration stays", "err", err)
		return err
	}
	d.log.Info("Completed loading of configuration file", "filename", d.flags.configFile)
	return nil
}
