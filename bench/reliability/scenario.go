// Package reliability is walship's fault matrix at production sizes
// (`make reliability`, RELIABILITY.md): a scenario runs a sender (the
// walship binary as sidecar or agent, or upstream Prometheus's sender
// beside it) as a process of its own under load, injects its faults
// (SIGKILLs, an endpoint outage, a flapping endpoint), then stops the load
// and accounts for every sample: each one the WAL holds was accepted by
// the recorder, the receiver on 127.0.0.1 that records what it takes, or
// it is lost. The load is a Prometheus server's TSDB (upstream's own
// writer) for sidecars, scrape targets for agents.
package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walship/walship/bench/harness"
)

// Options size the scenarios.
type Options struct {
	Binaries
	Work        string        // a directory of its own per run is made here
	Series      int           // written (sidecars) or scraped (agents) every Interval
	Interval    time.Duration // between scrapes
	Protocol    string        // rw1 or rw2
	SegmentSize int           // of the sidecars' TSDB WAL
	Kills       int           // SIGKILLs of the kill scenario
	MaxRun      time.Duration // a killed run lives between a second and this
	MaxDown     time.Duration // a killed sender restarts after up to this (at random)
	Outage      time.Duration // the endpoint is down this long
	Budget      string        // outage-budget's --storage.agent.retention.size
	Flap        time.Duration // the endpoint flaps this long
	Reloads     int           // configuration reloads (SIGHUP), a second apart
	Settle      time.Duration // the load goes on this long after the last fault
	Quiet       time.Duration // the run ends when nothing new arrived for this long
	Seed        uint64
}

// Scenarios are the faults by name, in the order the table shows them.
var Scenarios = []string{"kill", "kill-truncate", "kill-checkpoint", "kill-delete", "outage", "outage-kill", "outage-budget", "outage-truncate", "flap", "reload"}

// Applies says whether scenario can run with s: reloads need a sender
// that reloads on SIGHUP (upstream-sender does not), a disk budget
// walship's agent (--storage.agent.retention.size), the server's
// truncations a sidecar.
func Applies(scenario string, s Sender) bool {
	switch scenario {
	case "reload":
		return s.Reloads
	case "outage-budget":
		return s.Walship && s.Agent
	case "outage-truncate":
		return !s.Agent
	case "kill-truncate", "kill-checkpoint", "kill-delete":
		return s.Agent
	}
	return true
}

// budgetSegment is the agent's WAL segment size in outage-budget: small,
// so that the budget deletes segments within a short outage.
const budgetSegment = "1MB"

// Result is one scenario run with one sender.
type Result struct {
	Scenario string `json:"scenario"`
	Sender   string `json:"sender"`
	Walship  bool   `json:"walship"` // walship's sender, which promises no loss
	Injected string `json:"injected"`
	Accounting
	// Reported are the samples the sender reported deleted before they
	// were acknowledged (its disk budget): a walship row must have lost no
	// more (what its queue had read already is delivered anyway). In
	// outage-truncate, the samples the sidecar estimated in the segments
	// the server deleted before it read them
	// (walship_wal_watcher_gap_samples_estimated_total).
	Reported int `json:"reported"`
	Runs     int `json:"runs"` // processes started
	// KilledInCheckpoint counts the kills that left a checkpoint
	// unfinished (checkpoint.N.tmp): kills during a truncation.
	KilledInCheckpoint int `json:"killed_in_checkpoint,omitempty"`
	// KilledInDeletion counts the kills that left segments a finished
	// checkpoint covers on disk: kills while the sender deleted them.
	KilledInDeletion int   `json:"killed_in_deletion,omitempty"`
	PeakRSS          int64 `json:"peak_rss_bytes"`
	// RSSByMinute is the sender's resident set (VmRSS, MiB) at the end of
	// each minute of a flap: steady, or growing with the backlog.
	RSSByMinute []int64        `json:"rss_mib_by_minute,omitempty"`
	Requests    int            `json:"requests"`
	Faults      map[string]int `json:"faults,omitempty"` // answers other than 204, by kind
	Seconds     float64        `json:"seconds"`
	Err         string         `json:"error,omitempty"`
}

// run is a scenario in progress.
type run struct {
	o       Options
	s       Sender
	dir     string
	argv    []string
	rec     *Recorder
	proc    *harness.Process
	runs    int
	peakRSS int64
	rng     *rand.Rand
	config  func(extra string) error // writes the configuration with extra remote_write entries
	closers []func()                 // run when the scenario ends
	walDir  string                   // the sender's WAL
	// inCheckpoint counts the kills that left an unfinished checkpoint,
	// inDeletion those that left segments a checkpoint covers.
	inCheckpoint, inDeletion int
}

// Run runs scenario with sender.
func Run(ctx context.Context, scenario string, s Sender, o Options) Result {
	res := Result{Scenario: scenario, Sender: s.Name, Walship: s.Walship}
	begin := time.Now()
	err := runScenario(ctx, scenario, s, o, &res)
	res.Seconds = time.Since(begin).Seconds()
	if err != nil {
		res.Err = err.Error()
	}
	return res
}

func runScenario(ctx context.Context, scenario string, s Sender, o Options, res *Result) error {
	r := &run{o: o, s: s, rng: rand.New(rand.NewPCG(o.Seed, uint64(len(scenario))))}
	r.dir = filepath.Join(o.Work, scenario+"-"+strings.NewReplacer(" ", "-", "--", "").Replace(s.Name))
	if err := os.RemoveAll(r.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	r.rec = NewRecorder()
	defer r.rec.Close()
	defer func() {
		for _, c := range r.closers {
			c()
		}
	}()

	// The load, and the sender over it.
	config, tsdbDir, dataDir := filepath.Join(r.dir, "config.yml"), filepath.Join(r.dir, "tsdb"), filepath.Join(r.dir, "data")
	ld, begin, err := r.openLoad(config, tsdbDir, scenario)
	if err != nil {
		return err
	}
	if err := r.config(""); err != nil {
		ld.stop()
		return err
	}
	r.walDir = s.wal(tsdbDir, dataDir)
	flags := r.flags(scenario)
	r.argv = append(s.argv(o.Binaries, config, tsdbDir, dataDir), flags...)
	walDir := r.walDir
	if len(flags) > 0 || scenario == "outage-truncate" {
		// The sender (or the server) deletes segments: the accounting
		// reads their shadow.
		walDir = filepath.Join(r.dir, "shadow")
		stopShadow := r.shadow(ctx, walDir)
		defer stopShadow()
	}
	stopped := false
	defer func() {
		if !stopped {
			ld.stop()
		}
		if r.proc != nil {
			r.proc.Kill()
		}
	}()
	if err := r.start(); err != nil {
		return err
	}
	// The sidecars' load begins once the sender runs: upstream's watcher
	// ships only samples newer than its start.
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	begin()
	if err := r.waitDelivering(ctx); err != nil {
		return err
	}

	back, err := r.inject(ctx, scenario, res)
	if err != nil {
		return err
	}
	if err := sleep(ctx, o.Settle); err != nil {
		return err
	}
	cut, err := ld.stop()
	stopped = true
	if err != nil {
		return err
	}
	r.waitQuiet(ctx, cut)
	if metric := reportedMetric[scenario]; metric != "" && s.Walship {
		addr, err := listenAddress(r.log())
		if err != nil {
			return err
		}
		if res.Reported, err = reported(addr, metric); err != nil {
			return err
		}
	}
	if err := r.proc.Stop(time.Minute); err != nil {
		return err
	}
	r.exited()
	r.proc = nil

	acc, err := account(walDir, r.rec, cut, back)
	if err != nil {
		return fmt.Errorf("accounting: %w", err)
	}
	res.Accounting = acc
	res.Runs, res.PeakRSS = r.runs, r.peakRSS
	res.KilledInCheckpoint, res.KilledInDeletion = r.inCheckpoint, r.inDeletion
	res.Requests, res.Faults, _ = r.rec.Received()
	return nil
}

// reportedMetric is, by scenario, the counter in which walship reports
// the samples it lost on purpose or by the server's doing.
var reportedMetric = map[string]string{
	"outage-budget":   "walship_storage_unsent_samples_deleted_total",
	"outage-truncate": "walship_wal_watcher_gap_samples_estimated_total",
}

// openLoad starts the load (targets for agents, a TSDB for sidecars) and
// sets r.config; begin starts writing. In outage-truncate the TSDB's
// blocks last a quarter of the outage, so that the server compacts its
// head and truncates its WAL (a checkpoint, the lower two thirds of the
// segments deleted) several times while the sidecar is behind.
func (r *run) openLoad(config, tsdbDir, scenario string) (ld load, begin func(), err error) {
	o := r.o
	if r.s.Agent {
		tg := startTargets(o.Series)
		r.closers = append(r.closers, tg.close)
		r.config = func(extra string) error {
			return writeConfig(config, r.rec.URL(), o.Protocol, tg, o.Interval.String(), extra)
		}
		return tg, func() {}, nil
	}
	var block time.Duration
	if scenario == "outage-truncate" {
		block = o.Outage / 4
	}
	db, err := openTSDB(tsdbDir, o.Series, o.SegmentSize, block)
	if err != nil {
		return nil, nil, err
	}
	r.config = func(extra string) error { return writeConfig(config, r.rec.URL(), o.Protocol, nil, "", extra) }
	return db, func() { db.start(o.Interval) }, nil
}

// flags are the scenario's flags for the sender: those of the scenarios
// in which it deletes WAL segments (a disk budget, frequent truncations).
func (r *run) flags(scenario string) []string {
	switch scenario {
	case "outage-budget":
		return []string{"--storage.agent.wal-segment-size=" + budgetSegment, "--storage.agent.retention.size=" + r.o.Budget}
	case "kill-truncate", "kill-checkpoint", "kill-delete":
		return r.s.truncating
	}
	return nil
}

// shadow keeps hard links of the sender's WAL segments in dir until the
// returned function is called.
func (r *run) shadow(ctx context.Context, dir string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- shadow(ctx, r.walDir, dir) }()
	return func() { cancel(); <-done }
}

// inject injects the scenario's faults; for outages it returns when the
// endpoint came back.
func (r *run) inject(ctx context.Context, scenario string, res *Result) (back time.Time, err error) {
	switch scenario {
	case "kill", "kill-truncate":
		res.Injected = fmt.Sprintf("%d SIGKILLs after 1-%s of running, restart 0-%s later", r.o.Kills, r.o.MaxRun, r.o.MaxDown)
		if scenario == "kill-truncate" {
			res.Injected = fmt.Sprintf("%d SIGKILLs as for kill, %s", r.o.Kills, strings.Join(r.s.truncating, " "))
		}
		for range r.o.Kills {
			if err := sleep(ctx, time.Second+time.Duration(r.rng.Int64N(int64(r.o.MaxRun-time.Second)))); err != nil {
				return back, err
			}
			if err := r.kill(ctx); err != nil {
				return back, err
			}
		}
	case "kill-checkpoint", "kill-delete":
		wait, moment := r.waitCheckpoint, "a checkpoint is being written"
		if scenario == "kill-delete" {
			wait, moment = r.waitDeletion, "a truncation deleted its first segment"
		}
		res.Injected = fmt.Sprintf("%d SIGKILLs, each the moment %s (%s)", r.o.Kills, moment, strings.Join(r.s.truncating, " "))
		for range r.o.Kills {
			if err := wait(ctx); err != nil {
				return back, err
			}
			if err := r.kill(ctx); err != nil {
				return back, err
			}
		}
	case "outage", "outage-kill", "outage-budget", "outage-truncate":
		res.Injected = fmt.Sprintf("503 for %s", r.o.Outage)
		switch scenario {
		case "outage-budget":
			res.Injected += fmt.Sprintf(", --storage.agent.retention.size=%s (segments of %s)", r.o.Budget, budgetSegment)
		case "outage-truncate":
			res.Injected += fmt.Sprintf(", the server truncating its WAL (blocks of %s, segments of %d KiB)", r.o.Outage/4, r.o.SegmentSize>>10)
		}
		r.rec.SetMode(Down)
		end := time.Now().Add(r.o.Outage)
		if scenario == "outage-kill" {
			at := time.Duration(r.rng.Int64N(int64(r.o.Outage / 2)))
			if err := sleep(ctx, at); err != nil {
				return back, err
			}
			if err := r.kill(ctx); err != nil {
				return back, err
			}
			res.Injected += fmt.Sprintf(", SIGKILL %s into it", at.Round(time.Second))
		}
		if err := sleep(ctx, time.Until(end)); err != nil {
			return back, err
		}
		r.rec.SetMode(Healthy)
		back = time.Now()
	case "flap":
		res.Injected = fmt.Sprintf("faults on about half the requests for %s", r.o.Flap)
		r.rec.SetMode(Flapping)
		for end := time.Now().Add(r.o.Flap); time.Until(end) > 0; {
			if err := sleep(ctx, min(time.Minute, time.Until(end))); err != nil {
				return back, err
			}
			res.RSSByMinute = append(res.RSSByMinute, r.proc.RSS()>>20)
		}
		r.rec.SetMode(Healthy)
	case "reload":
		res.Injected = fmt.Sprintf("%d reloads (SIGHUP) a second apart: a second entry added, changed, removed", r.o.Reloads)
		if err := r.reload(ctx, r.o.Reloads); err != nil {
			return back, err
		}
	default:
		return back, fmt.Errorf("unknown scenario %q", scenario)
	}
	return back, ctx.Err()
}

// reload reloads the configuration n times, a second apart, cycling a
// second entry (to a recorder of its own, not accounted) through absent,
// present, changed (queue_config); the accounted entry never changes. Both
// entries send the same requests, so walship ships them as one group,
// which every change of the second restarts.
// It ends with the second entry removed (a sender stopping with an entry
// whose endpoint is gone would wait out its flush deadline).
func (r *run) reload(ctx context.Context, n int) error {
	other := NewRecorder()
	r.closers = append(r.closers, other.Close) // after the sender stopped
	variants := []string{
		"",
		remoteWrite("other", other.URL(), r.o.Protocol, ""),
		remoteWrite("other", other.URL(), r.o.Protocol, "{max_samples_per_send: 500}"),
	}
	for i := range n {
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
		v := variants[(i+1)%len(variants)]
		if i == n-1 {
			v = ""
		}
		if err := r.config(v); err != nil {
			return err
		}
		if err := r.proc.Signal(syscall.SIGHUP); err != nil {
			return err
		}
	}
	return nil
}

// log is the log file of the sender's current run.
func (r *run) log() string { return filepath.Join(r.dir, fmt.Sprintf("run-%02d.log", r.runs-1)) }

// start starts the sender.
func (r *run) start() error {
	p, err := harness.Start(r.argv, r.dir, filepath.Join(r.dir, fmt.Sprintf("run-%02d.log", r.runs)))
	if err != nil {
		return err
	}
	r.proc = p
	r.runs++
	return nil
}

// kill SIGKILLs the sender and starts it again up to MaxDown later.
func (r *run) kill(ctx context.Context) error {
	r.proc.Kill()
	r.exited()
	if tmp, _ := filepath.Glob(filepath.Join(r.walDir, "checkpoint.*.tmp")); len(tmp) > 0 {
		r.inCheckpoint++ // killed while writing a checkpoint
	}
	if deleting(r.walDir) {
		r.inDeletion++
	}
	if r.o.MaxDown > 0 {
		if err := sleep(ctx, time.Duration(r.rng.Int64N(int64(r.o.MaxDown)))); err != nil {
			return err
		}
	}
	return r.start()
}

// waitCheckpoint waits until the sender is writing a checkpoint (its
// checkpoint.N.tmp directory exists), polling every millisecond.
func (r *run) waitCheckpoint(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if tmp, _ := filepath.Glob(filepath.Join(r.walDir, "checkpoint.*.tmp")); len(tmp) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s wrote no checkpoint within a minute", r.s.Name)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// waitDeletion waits until the sender deleted a WAL segment (the lowest
// segment number rose), polling every millisecond.
func (r *run) waitDeletion(ctx context.Context) error {
	first, _ := segmentRange(r.walDir)
	deadline := time.Now().Add(time.Minute)
	for {
		if lowest, _ := segmentRange(r.walDir); first >= 0 && lowest > first {
			return nil
		} else if first < 0 {
			first = lowest
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s deleted no segment within a minute", r.s.Name)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// deleting reports whether dir holds a segment that its newest finished
// checkpoint covers: checkpoint.N stands for segments up to N, which a
// truncation deletes after writing it.
func deleting(dir string) bool {
	lowest, checkpoint := segmentRange(dir)
	return lowest >= 0 && checkpoint >= 0 && lowest <= checkpoint
}

// segmentRange returns the lowest segment number in dir and the number of
// its newest finished checkpoint, -1 for none.
func segmentRange(dir string) (lowest, checkpoint int) {
	lowest, checkpoint = -1, -1
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if n, ok := strings.CutPrefix(name, "checkpoint."); ok {
			if k, err := strconv.Atoi(n); err == nil { // not a .tmp
				checkpoint = max(checkpoint, k)
			}
			continue
		}
		if k, err := strconv.Atoi(name); err == nil && (lowest < 0 || k < lowest) {
			lowest = k
		}
	}
	return lowest, checkpoint
}

// sleep waits d, the fault schedule's pace (nothing waits on it for
// synchronisation), or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (r *run) exited() { r.peakRSS = max(r.peakRSS, r.proc.PeakRSS()) }

// waitDelivering waits until the recorder took a sample.
func (r *run) waitDelivering(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if _, _, n := r.rec.Received(); n > 0 {
			return nil
		}
		select {
		case <-r.proc.Exited():
			return fmt.Errorf("%s exited before it shipped anything (see %s)", r.s.Name, r.dir)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the recorder
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s shipped nothing within a minute", r.s.Name)
		}
	}
}

// waitQuiet waits until no new sample older than cut arrived for Quiet.
func (r *run) waitQuiet(ctx context.Context, cut time.Time) {
	r.rec.newestBefore(cut)
	since := time.Now()
	deadline := since.Add(10 * time.Minute)
	for time.Since(since) < r.o.Quiet && time.Now().Before(deadline) && ctx.Err() == nil {
		if at := r.rec.newestBefore(cut); at.After(since) {
			since = at
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond): // polling the recorder
		}
	}
}
