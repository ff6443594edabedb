package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/walship/walship/bench/shape"
	"github.com/walship/walship/bench/walgen"
)

// Profile runs one walship sender over the shape's WAL (or, for the agent,
// scraping the shape's targets every scrapeInterval), as Run does, with
// the binary's hidden profiling flags: a CPU profile of the whole run
// (cpu.pprof) and the heap profile of its largest live heap (heap.pprof),
// written into dir. It returns the run's result.
func Profile(ctx context.Context, b Binaries, s shape.Shape, c Cell, snd Sender, workDir, dir string, timeout, scrapeInterval time.Duration) (Result, error) {
	if !snd.Walship() {
		return Result{}, fmt.Errorf("only walship's senders take the profiling flags, not %s", snd.Name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	walDir := filepath.Join(workDir, "wal", s.Name)
	m, err := walgen.Ensure(walDir, s)
	if err != nil {
		return Result{}, err
	}
	rcv, err := startReceiver(b.Receiver)
	if err != nil {
		return Result{}, err
	}
	defer rcv.close()
	cpu, heap := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "heap.pprof")
	profiled := snd
	profiled.argv = func(b Binaries, config, walDir, dataDir string) []string {
		return append(snd.argv(b, config, walDir, dataDir), "--debug.cpuprofile="+cpu, "--debug.memprofile="+heap)
	}
	p := Plan{WorkDir: workDir, Timeout: timeout, ScrapeInterval: scrapeInterval}
	rs := runSpec{shape: s, manifest: m, walDir: walDir, cell: c, sender: profiled, logs: dir}
	if snd.Agent {
		if s.Scrapes > maxAgentScrapes {
			return Result{}, fmt.Errorf("shape %s: the agents scrape at most %d times", s.Name, maxAgentScrapes)
		}
		if rs.targets, err = startServer(b.Targets, "--shape="+s.Name); err != nil {
			return Result{}, err
		}
		defer rs.targets.close()
		rs.hashes = s.SeriesHashes()
	}
	r := runOne(ctx, b, rcv, p, rs)
	if r.Error != "" {
		return r, fmt.Errorf("%s", r.Error)
	}
	return r, nil
}
