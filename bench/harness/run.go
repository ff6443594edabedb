// Package harness runs the whole-process benchmark: it generates WALs
// (package walgen), starts the receiver in a process of its own, and runs
// each sender (upstream's, and the walship binary in the modes users run)
// as a process over the same WAL, alternating them, several times each.
// Every figure comes from outside the process: user and system CPU and
// peak RSS from wait4, wall time, and what the receiver counted (bytes on
// the wire, and the Sum that proves every sample arrived exactly once).
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/walship/walship/bench/shape"
	"github.com/walship/walship/bench/walgen"
)

// Plan is what one harness invocation measures: every shape, in every
// cell, with every sender, Iterations times. Within an iteration the
// senders run one after the other, in an order rotated every iteration.
type Plan struct {
	Shapes     []shape.Shape
	Cells      []Cell
	Senders    []Sender
	Iterations int
	// WorkDir holds the generated WALs (kept between invocations) and
	// each run's data directory.
	WorkDir string
	// Results is the JSON-lines file every Result is appended to; logs
	// of the runs go next to it.
	Results string
	// Timeout bounds one run.
	Timeout time.Duration
	// Progress receives a line per run.
	Progress io.Writer
	// ScrapeInterval is how often the agents scrape each target.
	ScrapeInterval time.Duration
}

// Run executes the plan. It returns the results and an error if a run
// failed or did not deliver every sample exactly once (the other runs
// still happen and are recorded).
func Run(ctx context.Context, b Binaries, p Plan) ([]Result, error) {
	rcv, err := startReceiver(b.Receiver)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	logs := filepath.Join(filepath.Dir(p.Results), "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	var (
		results []Result
		failed  []error
		tgs     *server // the shape's targets, while agents run
	)
	defer func() {
		if tgs != nil {
			tgs.close()
			tgs = nil
		}
	}()
	for _, s := range p.Shapes {
		walDir := filepath.Join(p.WorkDir, "wal", s.Name)
		fmt.Fprintf(p.Progress, "WAL %s: %d series x %d scrapes (%s)\n", s.Name, s.Series, s.Scrapes, walDir)
		m, err := ensureWAL(walDir, s)
		if err != nil {
			return results, fmt.Errorf("generate %s: %w", s.Name, err)
		}
		fmt.Fprintf(p.Progress, "  %d samples, %d segments, %.1f MiB, %.0f label bytes per series\n",
			m.Sum.Samples, m.Segments, float64(m.Bytes)/(1<<20), float64(m.LabelBytes)/float64(s.Series))
		var hashes []uint64 // the series', for the agents' sums
		if slices.ContainsFunc(p.Senders, func(s Sender) bool { return s.Agent }) {
			if s.Scrapes > maxAgentScrapes {
				return results, fmt.Errorf("shape %s: the agents scrape at most %d times (a scrape refuses samples more than ten minutes ahead)", s.Name, maxAgentScrapes)
			}
			if tgs, err = startServer(b.Targets, "--shape="+s.Name); err != nil {
				return results, err
			}
			hashes = s.SeriesHashes()
		}
		for _, c := range p.Cells {
			for it := range p.Iterations {
				for k := range p.Senders {
					snd := p.Senders[(k+it)%len(p.Senders)]
					if ctx.Err() != nil {
						return results, ctx.Err()
					}
					r := runOne(ctx, b, rcv, p, runSpec{shape: s, manifest: m, walDir: walDir, targets: tgs, hashes: hashes, cell: c, sender: snd, iteration: it, logs: logs})
					results = append(results, r)
					if err := appendResult(p.Results, r); err != nil {
						return results, err
					}
					fmt.Fprintln(p.Progress, "  "+progressLine(r))
					if r.Error != "" {
						failed = append(failed, fmt.Errorf("%s %s %s #%d: %s", s.Name, c, snd.Name, it, r.Error))
					}
				}
			}
		}
		if tgs != nil {
			tgs.close()
			tgs = nil
		}
	}
	return results, errors.Join(failed...)
}

// maxAgentScrapes bounds the scrapes of an agent shape: its last samples
// are timestamped Scrapes×15 s after a minute from now, and a scrape
// refuses samples more than ten minutes ahead.
const maxAgentScrapes = 30

type runSpec struct {
	shape     shape.Shape
	manifest  walgen.Manifest
	walDir    string
	targets   *server  // the shape's scrape targets, for the agents
	hashes    []uint64 // the shape's series hashes, for the agents
	cell      Cell
	sender    Sender
	iteration int
	logs      string
}

func progressLine(r Result) string {
	status := "ok"
	if r.Error != "" {
		status = "FAILED: " + r.Error
	}
	return fmt.Sprintf("%-8s %s #%d: %.2f M samples/CPU-s (%.1f s CPU), peak RSS %.0f MiB, shipped in %.1f s, %.1f MiB on the wire; %s",
		r.Sender, r.Cell, r.Iteration, r.SamplesPerCPUSecond()/1e6, r.Usage.CPUSeconds(), float64(r.Usage.MaxRSSBytes)/(1<<20),
		r.ShipSeconds, float64(r.WireBytes)/(1<<20), status)
}

func runOne(ctx context.Context, b Binaries, rcv *receiverProc, p Plan, rs runSpec) Result {
	endpoints := int64(max(rs.cell.Endpoints, 1))
	want := rs.manifest.Sum
	// The agents' samples are timestamped from a minute after now (the
	// scrape refuses samples more than ten minutes ahead, and an agent
	// ships only what is newer than its start).
	agentBase := time.Now().Add(time.Minute).UnixMilli()
	if rs.sender.Agent {
		want = rs.shape.SumFrom(rs.hashes, agentBase)
	}
	want.Samples *= endpoints
	want.Hash *= uint64(endpoints)
	r := Result{Shape: rs.shape.Name, Series: rs.shape.Series, Scrapes: rs.shape.Scrapes, Cell: rs.cell,
		Sender: rs.sender.Name, Iteration: rs.iteration, Samples: want.Samples}
	fail := func(err error) Result {
		r.Error = err.Error()
		return r
	}

	dataDir := filepath.Join(p.WorkDir, "run")
	if err := os.RemoveAll(dataDir); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fail(err)
	}
	cfg := rs.cell.config(rcv.url())
	if rs.sender.Agent {
		if err := rs.targets.reset("base=" + strconv.FormatInt(agentBase, 10)); err != nil {
			return fail(err)
		}
		cfg = rs.cell.agentConfig(rcv.url(), rs.targets.addr(), rs.shape.Targets(), p.ScrapeInterval)
	}
	config := filepath.Join(p.WorkDir, "config.yml")
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		return fail(err)
	}
	if err := rcv.reset(); err != nil {
		return fail(err)
	}
	logFile := filepath.Join(rs.logs, fmt.Sprintf("%s-%s-%d-%d-%s-%d.log", rs.shape.Name, rs.cell.Protocol, rs.cell.MaxShards, endpoints, rs.sender.Name, rs.iteration))
	proc, err := Start(rs.sender.argv(b, config, rs.walDir, dataDir), dataDir, logFile)
	if err != nil {
		return fail(err)
	}

	// Wait for every sample at the receiver, or for the sender to exit.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	arrived := make(chan error, 1)
	go func() {
		_, ok, err := rcv.wait(waitCtx, want.Samples, p.Timeout)
		if err == nil && !ok {
			err = fmt.Errorf("not every sample arrived within %s", p.Timeout)
		}
		arrived <- err
	}()
	var waitErr error
	select {
	case waitErr = <-arrived:
		r.ShipSeconds = time.Since(proc.begin).Seconds()
	case <-proc.exited:
		cancel()
		waitErr = <-arrived
		if waitErr != nil && !errors.Is(waitErr, context.Canceled) {
			waitErr = nil
		}
	}
	if rs.sender.Exits {
		select {
		case <-proc.exited:
		case <-time.After(p.Timeout):
			proc.Stop(time.Minute)
			waitErr = errors.Join(waitErr, fmt.Errorf("did not exit within %s", p.Timeout))
		}
	} else if err := proc.Stop(2 * time.Minute); err != nil {
		waitErr = errors.Join(waitErr, err)
	}
	r.Usage = proc.usage

	got, err := rcv.stats()
	if err != nil {
		return fail(err)
	}
	r.Received, r.WireBytes, r.Requests = got.Sum.Samples, got.WireBytes, got.Requests
	r.Complete = got.Sum == want
	switch {
	case waitErr != nil:
		return fail(fmt.Errorf("%w (log: %s)", waitErr, logFile))
	case r.Usage.ExitCode != 0:
		return fail(fmt.Errorf("exit status %d (log: %s)", r.Usage.ExitCode, logFile))
	case got.Refused > 0:
		return fail(fmt.Errorf("the receiver refused %d malformed requests", got.Refused))
	case !r.Complete:
		return fail(fmt.Errorf("received %d samples (sum %x), want %d (sum %x): lost, duplicated or altered samples", got.Sum.Samples, got.Sum.Hash, want.Samples, want.Hash))
	}
	if r.ShipSeconds == 0 {
		r.ShipSeconds = r.Usage.WallSeconds
	}
	return r
}

// ensureWAL is walgen.Ensure run in a process of its own (this program's
// gen command): generating a WAL of 1M series takes hundreds of MiB, and
// every sender the harness starts afterwards would report at least the
// harness's own peak as its maxrss (a child started by vfork, as os/exec
// starts it, keeps the larger of its parent's high-water mark and its
// own across exec).
func ensureWAL(dir string, s shape.Shape) (walgen.Manifest, error) {
	self, err := os.Executable()
	if err != nil {
		return walgen.Manifest{}, err
	}
	if out, err := exec.Command(self, "gen", "--shape="+s.Name, dir).CombinedOutput(); err != nil {
		return walgen.Manifest{}, fmt.Errorf("%s gen: %w: %s", self, err, out)
	}
	return walgen.ReadManifest(dir)
}
