package main

import (
	"github.com/alecthomas/kingpin/v2"
)

// demoCommand runs the agent on an embedded configuration that needs no
// other software: it scrapes its own /metrics and ships to a Remote-Write
// receiver it starts on loopback, which decodes and counts what it
// accepts. A line a second says how many samples were scraped, written to
// the WAL, sent and acknowledged.
type demoCommand struct {
	cmd   *kingpin.CmdClause
	agent *agentCommand
}

// demoAgentPath is the demo's storage when --storage.agent.path is left at
// its default, so that the demo's WAL and positions do not mix with a real
// agent's.
const demoAgentPath = "data-demo/"

func newDemoCommand(app *kingpin.Application, agent *agentCommand) *demoCommand {
	c := &demoCommand{agent: agent}
	c.cmd = app.Command("demo", "Run the agent on an embedded configuration: it scrapes itself every 5 s and ships to a receiver on loopback, printing progress. Ctrl-C stops it.")
	return c
}
