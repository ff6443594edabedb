// Command walship ships a Prometheus write-ahead log to remote_write
// endpoints. For now it offers the inspect command; the agent, sidecar and
// replay commands follow.
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
	exitError   = 2 // bad flags, unreadable input
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	app := kingpin.New("walship", "Ships a Prometheus write-ahead log to remote_write endpoints.")
	app.HelpFlag.Short('h')
	app.UsageWriter(os.Stderr)
	app.ErrorWriter(os.Stderr)

	inspect := newInspectCommand(app)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "walship: %v (try --help)\n", err)
		return exitError
	}
	switch cmd {
	case inspect.cmd.FullCommand():
		return inspect.run(os.Stdout, os.Stderr)
	}
	fmt.Fprintf(os.Stderr, "walship: unknown command %q\n", cmd)
	return exitError
}
