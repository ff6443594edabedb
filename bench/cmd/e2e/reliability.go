package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/walship/walship/bench/reliability"
)

// reliabilityFlags are the flags of `e2e reliability`.
type reliabilityFlags struct {
	cmd                *kingpin.CmdClause
	scenarios, senders *string
	o                  reliability.Options
	out                *string
}

// reliabilityCommand registers `e2e reliability`: the fault matrix (see
// package reliability). Its defaults are `make reliability`'s.
func reliabilityCommand(app *kingpin.Application) *reliabilityFlags {
	f := &reliabilityFlags{cmd: app.Command("reliability", "Run the fault matrix: kills, outages, a flapping endpoint, under load, every sample accounted for (RELIABILITY.md).")}
	f.scenarios = f.cmd.Flag("scenarios", "Comma-separated: "+strings.Join(reliability.Scenarios, ", ")+".").Default(strings.Join(reliability.Scenarios, ",")).String()
	f.senders = f.cmd.Flag("senders", "Comma-separated: sidecar, agent (walship's); upstream-sidecar, prometheus-agent (upstream's).").Default("sidecar,upstream-sidecar,agent,prometheus-agent").String()
	f.cmd.Flag("walship", "The walship binary.").Default("bin/walship").StringVar(&f.o.Walship)
	f.cmd.Flag("upstream-sender", "Upstream's sender (make bench-build).").Default("bin/upstream-sender").StringVar(&f.o.UpstreamSender)
	f.cmd.Flag("prometheus", "Upstream's prometheus binary (make bench-build-agent).").Default("bin/prometheus").StringVar(&f.o.Prometheus)
	f.cmd.Flag("work", "Work directory: each run's WAL, data and logs.").Default("bench/work/reliability").StringVar(&f.o.Work)
	f.out = f.cmd.Flag("out", "Results file (JSON lines); the Markdown table goes to standard output.").Default("bench/work/reliability/results.jsonl").String()
	f.cmd.Flag("series", "Series written (sidecars) or scraped (agents) every interval.").Default("10000").IntVar(&f.o.Series)
	f.cmd.Flag("interval", "Between scrapes.").Default("1s").DurationVar(&f.o.Interval)
	f.cmd.Flag("protocol", "rw1 or rw2.").Default("rw1").EnumVar(&f.o.Protocol, "rw1", "rw2")
	f.cmd.Flag("segment-size", "WAL segment size of the sidecars' TSDB, and of walship's agent in fs-faults (bytes).").Default("1048576").IntVar(&f.o.SegmentSize)
	f.cmd.Flag("kills", "SIGKILLs in the kill scenario.").Default("20").IntVar(&f.o.Kills)
	f.cmd.Flag("max-run", "A killed run lives between 1s and this.").Default("10s").DurationVar(&f.o.MaxRun)
	f.cmd.Flag("max-down", "A killed sender restarts after up to this.").Default("3s").DurationVar(&f.o.MaxDown)
	f.cmd.Flag("outage", "How long the endpoint is down.").Default("60s").DurationVar(&f.o.Outage)
	f.cmd.Flag("budget", "The agent's disk budget in outage-budget (--storage.agent.retention.size).").Default("3MB").StringVar(&f.o.Budget)
	f.cmd.Flag("flap", "How long the endpoint flaps.").Default("2m").DurationVar(&f.o.Flap)
	f.cmd.Flag("reloads", "Configuration reloads, a second apart.").Default("60").IntVar(&f.o.Reloads)
	f.cmd.Flag("settle", "Load after the last fault.").Default("10s").DurationVar(&f.o.Settle)
	f.cmd.Flag("quiet", "A run ends when nothing new arrived for this long.").Default("15s").DurationVar(&f.o.Quiet)
	f.cmd.Flag("seed", "Seed of the fault schedule (0: the time).").Default("0").Uint64Var(&f.o.Seed)
	return f
}

// run runs every scenario with every sender it applies to and fails when
// walship lost a sample.
func (f *reliabilityFlags) run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o := f.o
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if err := absolute(&o.Walship, &o.UpstreamSender, &o.Prometheus, &o.Work); err != nil {
		return err
	}
	if err := lockWork(o.Work); err != nil {
		return err
	}
	out, err := createResults(*f.out)
	if err != nil {
		return err
	}
	defer out.Close()
	fmt.Printf("seed %d\n", o.Seed)
	var results []reliability.Result
	for _, sc := range strings.Split(*f.scenarios, ",") {
		if !slices.Contains(reliability.Scenarios, sc) {
			return fmt.Errorf("unknown scenario %q", sc)
		}
		for _, name := range strings.Split(*f.senders, ",") {
			s, ok := reliability.Senders[name]
			if !ok {
				return fmt.Errorf("unknown sender %q", name)
			}
			if !reliability.Applies(sc, s) {
				continue
			}
			res := reliability.Run(ctx, sc, s, o)
			fmt.Printf("%s, %s: %d written, %d delivered, %d lost, %d duplicated, %.0f s %s\n",
				sc, s.Name, res.Written, res.Delivered, res.Lost, res.Duplicated, res.Seconds, res.Err)
			results = append(results, res)
			if err := json.NewEncoder(out).Encode(res); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	fmt.Println()
	reliability.WriteMarkdown(os.Stdout, results)
	for _, r := range results {
		if r.Err != "" {
			return fmt.Errorf("%s, %s: %s", r.Scenario, r.Sender, r.Err)
		}
		// The disk budget reports what it deleted unacknowledged: an upper
		// bound (what the queue had read already is still delivered). A
		// gap the server's truncation left is reported with an estimate:
		// a loss it did not report at all fails.
		silent := r.Lost > r.Reported
		if r.Scenario == "outage-truncate" {
			silent = r.Lost > 0 && r.Reported == 0
		}
		if r.Walship && r.DamageUnlogged > 0 {
			return fmt.Errorf("%s, %s: damage not logged: %q", r.Scenario, r.Sender, r.Damaged)
		}
		if r.Walship && r.LostAfterDamage > 0 {
			return fmt.Errorf("%s, %s: %d samples lost in records a page or more after the damage", r.Scenario, r.Sender, r.LostAfterDamage)
		}
		if r.Walship && (silent || r.Unknown > 0 || r.Orphaned > 0) {
			return fmt.Errorf("%s, %s: %d samples lost, %d reported, %d unknown, %d of series the WAL does not name", r.Scenario, r.Sender, r.Lost, r.Reported, r.Unknown, r.Orphaned)
		}
	}
	return nil
}

// absolute makes each path absolute (the senders run in directories of
// their own).
func absolute(paths ...*string) error {
	for _, p := range paths {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}

// createResults creates a results file and its directory.
func createResults(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}
