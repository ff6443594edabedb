//go:build nosd

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// This file is the agent of a binary built with the nosd tag (make
// build's bin/walship): without Prometheus's service discovery linked in,
// sidecar, replay and inspect start in a fraction of the memory, and the
// agent and demo commands run walship-agent, the full build, in this
// process's place, with the same arguments.

// agentBinary is the full build's name.
const agentBinary = "walship-agent"

func (c *agentCommand) run() int { return execAgent() }

func (c *demoCommand) run() int { return execAgent() }

// execAgent replaces this process with walship-agent, found next to this
// executable or on the PATH; it returns only when that fails.
func execAgent() int {
	path, err := findAgent()
	if err == nil {
		err = syscall.Exec(path, append([]string{path}, os.Args[1:]...), os.Environ())
	}
	fmt.Fprintf(os.Stderr, "walship: the agent runs in %s: %v (make build builds it next to walship)\n", agentBinary, err)
	return exitError
}

func findAgent() (string, error) {
	if self, err := os.Executable(); err == nil {
		if self, err = filepath.EvalSymlinks(self); err == nil {
			p := filepath.Join(filepath.Dir(self), agentBinary)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	p, err := exec.LookPath(agentBinary)
	if err != nil {
		return "", errors.New("not found next to this executable nor on the PATH")
	}
	return p, nil
}
