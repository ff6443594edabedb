// Command walship ships a Prometheus write-ahead log to remote_write
// endpoints. Its commands:
//
//   - agent (the default): scrape scrape_configs into walship's own WAL and
//     ship it, as `prometheus --agent` does;
//   - sidecar: tail the WAL of a running Prometheus server, read-only;
//   - replay: ship every sample of a WAL directory once and exit;
//   - inspect: count and check a WAL directory;
//   - demo: the agent on an embedded configuration (scrapes itself, ships
//     to a receiver on loopback), with progress lines.
//
// Flags and the configuration file are Prometheus's, so that tools and
// people that run `prometheus --agent` can run walship instead.
package main

import (
	"fmt"
	"os"

	"github.com/alecthomas/kingpin/v2"
)

// Exit statuses.
const (
	exitOK      = 0
	exitCorrupt = 1 // inspect found damage
	exitFailed  = 1 // replay: samples were refused for good, or it was interrupted
	exitError   = 2 // bad flags, configuration or input; cannot start
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	app := kingpin.New("walship", "Ships a Prometheus write-ahead log to remote_write endpoints.")
	app.HelpFlag.Short('h')
	app.UsageWriter(os.Stderr)
	app.ErrorWriter(os.Stderr)

	common := addCommonFlags(app)
	agent := newAgentCommand(app, common)
	sidecar := newSidecarCommand(app, common)
	replay := newReplayCommand(app, common)
	inspect := newInspectCommand(app)
	demo := newDemoCommand(app, agent)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "walship: %v (try --help)\n", err)
		return exitError
	}
	switch cmd {
	case agent.cmd.FullCommand():
		return agent.run()
	case sidecar.cmd.FullCommand():
		return sidecar.run()
	case replay.cmd.FullCommand():
		return replay.run()
	case demo.cmd.FullCommand():
		return demo.run()
	case inspect.cmd.FullCommand():
		return inspect.run(os.Stdout, os.Stderr)
	}
	fmt.Fprintf(os.Stderr, "walship: unknown command %q\n", cmd)
	return exitError
}
