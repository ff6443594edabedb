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
	"slices"
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
	SegmentSize int           // of the sidecars' TSDB WAL, and of walship's agent's in fs-faults
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
var Scenarios = []string{"kill", "kill-truncate", "kill-checkpoint", "kill-delete", "outage", "outage-kill", "outage-budget", "outage-truncate", "corrupt", "corrupt-checkpoint", "disk-full", "fs-faults", "flap", "reload"}

// Applies says whether scenario can run with s: reloads need a sender
// that reloads on SIGHUP (upstream-sender does not), a disk budget
// walship's agent (--storage.agent.retention.size), the server's
// truncations a sidecar; a full or failing disk is the agent's own data
// directory.
func Applies(scenario string, s Sender) bool {
	switch scenario {
	case "reload":
		return s.Reloads
	case "outage-budget", "corrupt-checkpoint":
		return s.Walship && s.Agent
	case "outage-truncate", "corrupt":
		return !s.Agent
	case "kill-truncate", "kill-checkpoint", "kill-delete", "disk-full", "fs-faults":
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
	RSSByMinute []int64 `json:"rss_mib_by_minute,omitempty"`
	// Damaged are the places corrupt damaged, each with how walship's log
	// named it; DamageUnlogged counts those a walship sender did not log.
	Damaged        []string `json:"damaged,omitempty"`
	DamageUnlogged int      `json:"damage_unlogged,omitempty"`
	// CommitsFailed counts the commits walship's agent could not write
	// (disk-full, fs-faults: walship_storage_commits_failed_total).
	CommitsFailed int `json:"commits_failed,omitempty"`
	// Refused counts the file operations fs-faults' file system refused
	// the sender, by kind (write, fsync, create, rename, remove).
	Refused  map[string]int `json:"fs_refused,omitempty"`
	Requests int            `json:"requests"`
	Faults   map[string]int `json:"faults,omitempty"` // answers other than 204, by kind
	Seconds  float64        `json:"seconds"`
	Err      string         `json:"error,omitempty"`
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
	damaged                  []damage // corrupt's
	ffs                      *faultFS // fs-faults' file system
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
	detachStale(filepath.Join(r.dir, "data"))
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
	onDisk := r.walDir // where the WAL's files are on the real disk
	switch scenario {
	case "disk-full":
		if err := r.mountDisk(dataDir); err != nil {
			return err
		}
	case "fs-faults":
		backing, err := r.mountFaultFS(dataDir)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dataDir, r.walDir)
		if err != nil {
			return err
		}
		onDisk = filepath.Join(backing, rel)
	}
	flags := r.flags(scenario)
	r.argv = append(s.argv(o.Binaries, config, tsdbDir, dataDir), flags...)
	walDir := r.walDir
	if len(flags) > 0 || scenario == "outage-truncate" {
		// The sender (or the server) deletes segments: the accounting
		// reads their shadow, hard links taken on the disk they are on.
		walDir = filepath.Join(r.dir, "shadow")
		stopShadow := r.shadow(ctx, onDisk, walDir)
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
	if (scenario == "disk-full" || scenario == "fs-faults") && s.Walship {
		addr, err := listenAddress(r.log())
		if err != nil {
			return err
		}
		if res.CommitsFailed, err = reported(addr, "walship_storage_commits_failed_total"); err != nil {
			return err
		}
	}
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
	if err := r.reportDamage(res); err != nil {
		return err
	}

	acc, err := account(walDir, r.rec, cut, back, r.damaged)
	if err != nil {
		return fmt.Errorf("accounting: %w", err)
	}
	res.Accounting = acc
	if scenario == "corrupt" && s.Walship && res.DamageUnlogged == 0 {
		res.Reported = acc.LostDamaged // logged with segment and offset
	}
	res.Runs, res.PeakRSS = r.runs, r.peakRSS
	res.KilledInCheckpoint, res.KilledInDeletion = r.inCheckpoint, r.inDeletion
	res.Requests, res.Faults, _ = r.rec.Received()
	if r.ffs != nil {
		res.Refused = r.ffs.Refused()
	}
	return nil
}

// reportedMetric is, by scenario, the counter in which walship reports
// the samples it lost on purpose or by the server's doing.
var reportedMetric = map[string]string{
	"outage-budget":      "walship_storage_unsent_samples_deleted_total",
	"corrupt-checkpoint": "prometheus_remote_storage_samples_dropped_total", // their series record was in the damage
	"outage-truncate":    "walship_wal_watcher_gap_samples_estimated_total",
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
// In fs-faults the agent truncates as in kill-truncate, so that
// checkpoints are written and renamed and segments deleted while the
// file system fails, and walship's agent writes segments of SegmentSize.
func (r *run) flags(scenario string) []string {
	switch scenario {
	case "fs-faults":
		flags := slices.Clone(r.s.truncating)
		for i, f := range flags {
			if r.s.Walship && strings.HasPrefix(f, "--storage.agent.wal-segment-size=") {
				flags[i] = fmt.Sprintf("--storage.agent.wal-segment-size=%dKB", r.o.SegmentSize>>10)
			}
		}
		return flags
	case "outage-budget":
		return []string{"--storage.agent.wal-segment-size=" + budgetSegment, "--storage.agent.retention.size=" + r.o.Budget}
	case "kill-truncate", "kill-checkpoint", "kill-delete", "corrupt-checkpoint":
		return r.s.truncating
	}
	return nil
}

// detachStale detaches what a run that ended without cleaning up left
// mounted at dir (disk-full's tmpfs, fs-faults' file system), so that its
// directory can be removed; nothing mounted there is the usual case.
func detachStale(dir string) { syscall.Unmount(dir, syscall.MNT_DETACH) }

// shadow keeps hard links of the sender's WAL segments in dir until the
// returned function is called.
func (r *run) shadow(ctx context.Context, from, dir string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- shadow(ctx, from, dir) }()
	return func() { cancel(); <-done }
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
