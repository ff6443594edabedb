//go:build !nosd

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walship/walship/internal/demo"
)

func (c *demoCommand) run() int {
	common := c.agent.common
	if common.agentPath == defaultAgentPath {
		common.agentPath = demoAgentPath
	}
	web, err := net.Listen("tcp", common.listenAddress)
	if err != nil {
		fmt.Fprintf(os.Stderr, "walship: --web.listen-address=%s: %v\n", common.listenAddress, err)
		return exitError
	}
	// The receiver outlives the agent: the agent's final flush still sends to it.
	recv := &demo.Receiver{}
	defer recv.Close()
	recvURL, err := recv.Start(context.Background(), "")
	if err != nil {
		fmt.Fprintf(os.Stderr, "walship: %v\n", err)
		return exitError
	}
	cfg, err := demo.Config(recvURL, web.Addr().String())
	if err != nil {
		fmt.Fprintf(os.Stderr, "walship: %v\n", err)
		return exitError
	}
	dir, err := os.MkdirTemp("", "walship-demo")
	if err != nil {
		fmt.Fprintf(os.Stderr, "walship: %v\n", err)
		return exitError
	}
	defer os.RemoveAll(dir)
	common.configFile = filepath.Join(dir, "walship.yml")
	if err := os.WriteFile(common.configFile, []byte(cfg), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "walship: %v\n", err)
		return exitError
	}
	fmt.Fprintf(os.Stderr, "walship demo: scraping http://%s/metrics, shipping to the receiver at %s, storage in %s. Ctrl-C stops.\n",
		web.Addr(), recvURL, common.agentPath)
	return c.agent.runWith(agentHooks{listener: web, started: func(reg *prometheus.Registry) func() {
		return startDemoProgress(os.Stdout, reg, recv)
	}})
}

// startDemoProgress prints a progress line a second until the returned
// function is called.
func startDemoProgress(w io.Writer, reg prometheus.Gatherer, recv *demo.Receiver) func() {
	p := &demo.Progress{Out: w, Interval: time.Second, Counters: demo.Counters{
		Scraped:      func() float64 { return gatherSum(reg, "prometheus_remote_storage_samples_in_total") },
		Written:      func() float64 { return gatherSum(reg, "prometheus_agent_samples_appended_total") },
		Sent:         func() float64 { return gatherSum(reg, "prometheus_remote_storage_samples_total") },
		Acknowledged: func() float64 { s := recv.Stats(); return float64(s.Samples + s.Histograms) },
	}}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = p.Run(ctx) }()
	return func() { cancel(); <-stopped }
}

// gatherSum is the sum of every series of the metric name in g.
func gatherSum(g prometheus.Gatherer, name string) float64 {
	families, _ := g.Gather()
	for _, mf := range families {
		if mf.GetName() == name {
			return sumFamily(mf)
		}
	}
	return 0
}
