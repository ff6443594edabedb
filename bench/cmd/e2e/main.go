// Command e2e is walship's whole-process benchmark: upstream Prometheus's
// sender and the walship binary ship the same generated WALs to a receiver
// in its own process, alternating, and are measured from outside (see
// package harness; BENCHMARKS.md says how to read the results).
//
//	e2e run --mode=quick           a few minutes: 10k series x 100 scrapes, RW1/RW2, default and max_shards 1
//	e2e run --mode=full            every shape (and 100k x 10, beside 100k x 100 for the backlog), protocol and queue setting, 3 times each
//	e2e run --mode=ci              the smallest run: checks that everything still works
//	e2e run --mode=agent           the agents: walship agent beside prometheus --agent, scraping 1M and 100k series
//	e2e report RESULTS.jsonl       the Markdown tables of a results file
//	e2e plot RESULTS.jsonl         its plots (SVG)
//	e2e profile --shape=1Mx5       one walship run with its CPU and heap profiles
//	e2e reliability                the fault matrix (RELIABILITY.md)
//	e2e gen --shape=1Mx5 DIR       write a shape's WAL
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/walship/walship/bench/harness"
	"github.com/walship/walship/bench/plots"
	"github.com/walship/walship/bench/receivers"
	"github.com/walship/walship/bench/shape"
	"github.com/walship/walship/bench/walgen"
)

// modes are the preset plans of --mode; flags given explicitly override them.
var modes = map[string]struct {
	shapes, protocols, shards, senders string
	iterations                         int
}{
	"ci":    {shapes: "2000x20", protocols: "rw1,rw2", shards: "default", senders: walSenders, iterations: 1},
	"quick": {shapes: "10kx100", protocols: "rw1,rw2", shards: "default,1", senders: walSenders, iterations: 1},
	"full":  {shapes: "10kx1000,100kx10,100kx100,1Mx5", protocols: "rw1,rw2", shards: "default,1", senders: walSenders, iterations: 3},
	"agent": {shapes: "1Mx5,100kx10", protocols: "rw1,rw2", shards: "default", senders: "prometheus-agent,agent", iterations: 3},
}

// walSenders are the senders of a WAL, upstream's and walship's.
const walSenders = "upstream,replay,sidecar"

func main() {
	app := kingpin.New("e2e", "walship's whole-process benchmark beside upstream Prometheus.")
	run := app.Command("run", "Run the benchmark.")
	mode := run.Flag("mode", "Preset: ci, quick, full or agent.").Default("quick").Enum("ci", "quick", "full", "agent")
	shapes := run.Flag("shapes", "Comma-separated shapes (10kx100, 100kx100, 1Mx5, 10kx1000 or SERIESxSCRAPES); default: the mode's.").String()
	protocols := run.Flag("protocols", "Comma-separated: rw1, rw2; default: the mode's.").String()
	shards := run.Flag("shards", "Comma-separated max_shards settings: default, or a number; default: the mode's.").String()
	endpoints := run.Flag("endpoints", "Comma-separated numbers of remote_write entries.").Default("1").String()
	distinct := run.Flag("distinct-relabel", "Give each remote_write entry write_relabel_configs of its own (that drop nothing the WAL holds).").Bool()
	sendersFlag := run.Flag("senders", "Comma-separated: upstream, replay, sidecar (a WAL's); prometheus-agent, agent (scraping); default: the mode's.").String()
	interval := run.Flag("scrape-interval", "How often the agents scrape each target.").Default("5s").Duration()
	iterations := run.Flag("iterations", "Runs of each sender per cell; default: the mode's.").Int()
	walship := run.Flag("walship", "The walship binary.").Default("bin/walship").String()
	work := run.Flag("work", "Work directory: generated WALs (kept) and the runs' data.").Default("bench/work").String()
	out := run.Flag("out", "Results directory (results.jsonl, summary.md, logs/); default: WORK/results/MODE-TIME.").String()
	timeout := run.Flag("timeout", "Longest a run may take.").Default("20m").Duration()

	report := app.Command("report", "Print the Markdown tables of a results file.")
	reportFile := report.Arg("results", "results.jsonl").Required().String()

	plot := app.Command("plot", "Draw the plots of a results file (SVG).")
	plotFile := plot.Arg("results", "results.jsonl").Required().String()
	plotDir := plot.Flag("out", "Directory for the files.").Default(".").String()
	plotFormat := plot.Flag("format", "svg or png.").Default("svg").Enum("svg", "png")

	prof := app.Command("profile", "Run one walship sender with its CPU and heap profiles (cpu.pprof, heap.pprof in --out); read them with go tool pprof.")
	profShape := prof.Flag("shape", "Shape.").Default("1Mx5").String()
	profProto := prof.Flag("protocol", "rw1 or rw2.").Default("rw1").Enum("rw1", "rw2")
	profShards := prof.Flag("max-shards", "max_shards (0: the default queue_config).").Default("0").Int()
	profEndpoints := prof.Flag("endpoints", "Number of remote_write entries.").Default("1").Int()
	profDistinct := prof.Flag("distinct-relabel", "Give each remote_write entry write_relabel_configs of its own (that drop nothing the WAL holds).").Bool()
	profSender := prof.Flag("sender", "replay, sidecar or agent.").Default("replay").Enum("replay", "sidecar", "agent")
	profInterval := prof.Flag("scrape-interval", "How often the agent scrapes each target.").Default("5s").Duration()
	profWalship := prof.Flag("walship", "The walship binary.").Default("bin/walship").String()
	profWork := prof.Flag("work", "Work directory (generated WALs).").Default("bench/work").String()
	profOut := prof.Flag("out", "Where the profiles go.").Default("bench/work/profile").String()

	recv := app.Command("receivers", "Ship a WAL with walship replay to real receivers (Prometheus, VictoriaMetrics, Thanos Receive) and read every sample back through their own APIs.")
	recvNames := recv.Flag("receivers", "Comma-separated: the receivers to run (prometheus, victoria-metrics, thanos-receive); empty: all but the opt-in ones (thanos-receive).").Default("").String()
	recvCases := recv.Flag("cases", "Comma-separated: the cases to run (replay, sidecar, agent, restart, 429, too-old, hashmod, features); empty: all.").Default("").String()
	recvShape := recv.Flag("shape", "Shape.").Default("2000x10").String()
	recvProtocols := recv.Flag("protocols", "Comma-separated: rw1, rw2.").Default("rw1,rw2").String()
	recvWalship := recv.Flag("walship", "The walship binary.").Default("bin/walship").String()
	recvPrometheus := recv.Flag("prometheus", "Upstream's prometheus binary (make bench-build-agent).").Default("bin/prometheus").String()
	recvCache := recv.Flag("cache", "Where receivers built from the module proxy are kept.").Default("bench/work/receivers").String()
	recvWork := recv.Flag("work", "Work directory: the receivers' data and logs.").Default("bench/work/receivers-run").String()

	rel := reliabilityCommand(app)
	host := hostileCommand(app)

	gen := app.Command("gen", "Write a shape's WAL.")
	genShape := gen.Flag("shape", "Shape.").Required().String()
	genDir := gen.Arg("dir", "Directory (replaced).").Required().String()

	cmd := kingpin.MustParse(app.Parse(os.Args[1:]))
	var err error
	switch cmd {
	case run.FullCommand():
		m := modes[*mode]
		var p harness.Plan
		p, err = plan(or(*shapes, m.shapes), or(*protocols, m.protocols), or(*shards, m.shards), *endpoints, *distinct, or(*sendersFlag, m.senders))
		if err == nil {
			p.Iterations = m.iterations
			if *iterations > 0 {
				p.Iterations = *iterations
			}
			p.WorkDir, p.Timeout, p.Progress, p.ScrapeInterval = *work, *timeout, os.Stdout, *interval
			dir := *out
			if dir == "" {
				dir = filepath.Join(*work, "results", *mode+"-"+time.Now().Format("20060102-150405"))
			}
			err = runPlan(p, *walship, dir)
		}
	case report.FullCommand():
		var rs []harness.Result
		rs, err = harness.ReadResults(*reportFile)
		if err == nil {
			harness.WriteMarkdown(os.Stdout, harness.Summarise(rs))
		}
	case plot.FullCommand():
		var rs []harness.Result
		rs, err = harness.ReadResults(*plotFile)
		if err == nil {
			var files []string
			files, err = plots.Write(harness.Summarise(rs), *plotDir, *plotFormat)
			for _, f := range files {
				fmt.Println(f)
			}
		}
	case recv.FullCommand():
		err = runReceivers(*recvNames, *recvCases, *recvShape, *recvProtocols, *recvWalship, *recvPrometheus, *recvCache, *recvWork)
	case rel.cmd.FullCommand():
		err = rel.run()
	case host.cmd.FullCommand():
		err = host.run()
	case prof.FullCommand():
		err = profile(*profShape, *profProto, *profShards, *profEndpoints, *profDistinct, *profSender, *profWalship, *profWork, *profOut, *profInterval)
	case gen.FullCommand():
		var s shape.Shape
		s, err = shape.Parse(*genShape)
		if err == nil {
			var m walgen.Manifest
			m, err = walgen.Ensure(*genDir, s)
			fmt.Printf("%s: %d samples, %d segments, %d bytes, in %s\n", *genDir, m.Sum.Samples, m.Segments, m.Bytes, m.Took)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func profile(shapeName, proto string, maxShards, endpoints int, distinct bool, sender, walship, work, out string, interval time.Duration) error {
	s, err := shape.Parse(shapeName)
	if err != nil {
		return err
	}
	snd, err := harness.ParseSenders(sender)
	if err != nil {
		return err
	}
	b, work, err := binaries(walship, work)
	if err != nil {
		return err
	}
	r, err := harness.Profile(context.Background(), b, s, harness.Cell{Protocol: proto, MaxShards: maxShards, Endpoints: max(endpoints, 1), Distinct: distinct}, snd[0], work, out, 20*time.Minute, interval)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s: %.1f s CPU, peak RSS %.0f MiB; profiles in %s:\n  go tool pprof -top %s %s\n  go tool pprof -sample_index=inuse_space -top %s %s\n",
		s.Name, r.Cell, r.Sender, r.Usage.CPUSeconds(), float64(r.Usage.MaxRSSBytes)/(1<<20), out,
		walship, filepath.Join(out, "cpu.pprof"), walship, filepath.Join(out, "heap.pprof"))
	return nil
}

// binaries finds the programs the harness runs, and makes the work
// directory absolute (the senders run in directories of their own).
func binaries(walship, work string) (harness.Binaries, string, error) {
	abs, err := filepath.Abs(walship)
	if err != nil {
		return harness.Binaries{}, "", err
	}
	b, err := harness.FindBinaries(abs)
	if err != nil {
		return b, "", err
	}
	if work, err = filepath.Abs(work); err != nil {
		return b, "", err
	}
	return b, work, lockWork(work)
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func plan(shapes, protocols, shards, endpoints string, distinct bool, senders string) (harness.Plan, error) {
	var p harness.Plan
	for name := range strings.SplitSeq(shapes, ",") {
		s, err := shape.Parse(name)
		if err != nil {
			return p, err
		}
		p.Shapes = append(p.Shapes, s)
	}
	for _, e := range strings.Split(endpoints, ",") {
		var n int
		if _, err := fmt.Sscan(e, &n); err != nil || n < 1 {
			return p, fmt.Errorf("--endpoints: %q is not a positive number", e)
		}
		for proto := range strings.SplitSeq(protocols, ",") {
			if proto != "rw1" && proto != "rw2" {
				return p, fmt.Errorf("--protocols: %q is neither rw1 nor rw2", proto)
			}
			for sh := range strings.SplitSeq(shards, ",") {
				c := harness.Cell{Protocol: proto, Endpoints: n, Distinct: distinct}
				if sh != "default" {
					if _, err := fmt.Sscan(sh, &c.MaxShards); err != nil || c.MaxShards < 1 {
						return p, fmt.Errorf("--shards: %q is neither default nor a positive number", sh)
					}
				}
				p.Cells = append(p.Cells, c)
			}
		}
	}
	var err error
	p.Senders, err = harness.ParseSenders(senders)
	return p, err
}

func runPlan(p harness.Plan, walship, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p.Results = filepath.Join(dir, "results.jsonl")
	b, workDir, err := binaries(walship, p.WorkDir)
	if err != nil {
		return err
	}
	p.WorkDir = workDir
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	results, runErr := harness.Run(ctx, b, p)
	summary, err := os.Create(filepath.Join(dir, "summary.md"))
	if err != nil {
		return err
	}
	defer summary.Close()
	host, _ := os.Hostname()
	fmt.Fprintf(summary, "Command: `e2e run %s` on %s, %d CPUs; %s.\n\n", strings.Join(os.Args[2:], " "), host, runtime.NumCPU(), time.Since(begin).Round(time.Second))
	harness.WriteMarkdown(summary, harness.Summarise(results))
	if _, err := plots.Write(harness.Summarise(results), dir, "svg"); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Printf("\n%s (%s)\n", dir, time.Since(begin).Round(time.Second))
	harness.WriteMarkdown(os.Stdout, harness.Summarise(results))
	return runErr
}

// runReceivers runs every case named of every receiver named (all when
// empty) with every protocol, prints the table and fails when any sample
// did not come back as it was written.
func runReceivers(names, cases, shapeName, protocols, walship, prometheusBin, cache, work string) error {
	s, err := shape.Parse(shapeName)
	if err != nil {
		return err
	}
	// The receivers and walship run in directories of their own.
	for _, p := range []*string{&walship, &prometheusBin, &cache, &work} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if err := lockWork(work); err != nil {
		return err
	}
	ctx := context.Background()
	var results []receivers.Result
	for _, r := range receivers.All(prometheusBin) {
		if names != "" && !slices.Contains(strings.Split(names, ","), r.Name) {
			continue
		}
		if names == "" && r.OptIn != "" {
			results = append(results, receivers.Result{Receiver: r.Name, Version: r.Version, Err: "skipped: " + r.OptIn})
			continue
		}
		bin := prometheusBin
		if r.Name != "prometheus" {
			fmt.Printf("%s %s: from %s (built from the module proxy when missing)\n", r.Name, r.Version, cache)
			begin := time.Now()
			if bin, err = receivers.Binary(ctx, r, cache); err != nil {
				results = append(results, receivers.Result{Receiver: r.Name, Version: r.Version, Err: "build failed: " + err.Error()})
				continue
			}
			if d := time.Since(begin); d > time.Second {
				fmt.Printf("%s %s: built in %s\n", r.Name, r.Version, d.Round(time.Second))
			}
		}
		for _, proto := range strings.Split(protocols, ",") {
			for _, c := range receivers.Cases {
				if cases != "" && !slices.Contains(strings.Split(cases, ","), c) {
					continue
				}
				res := receivers.Run(ctx, r, bin, walship, work, s, proto, c)
				fmt.Printf("%s %s %s: %d of %d samples read back, %d missing, %d extra, %d wrong, walship exit %d %s\n",
					r.Name, proto, c, res.GotSamples, res.Samples, res.Missing, res.Extra, res.Wrong, res.WalshipExit, res.Err)
				results = append(results, res)
			}
		}
	}
	fmt.Println()
	results = append(results, receivers.Skipped...)
	receivers.WriteMarkdown(os.Stdout, results)
	for _, r := range results {
		if !r.OK() && !r.Skip() {
			return fmt.Errorf("%s %s %s: not everything written was read back as it was", r.Receiver, r.Protocol, r.Case)
		}
	}
	return nil
}
