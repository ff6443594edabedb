package receivers

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/walship/walship/bench/shape"
	"github.com/walship/walship/bench/targets"
)

// scaleAgents is how many agents share the targets in the hashmod case.
const scaleAgents = 3

// shardLabel is the external label that tells the agents apart.
const shardLabel = "walship_agent"

// runScaleOut is the hashmod case: scaleAgents walship agents, each
// keeping the targets whose hashmod of their metrics path is its own (the
// README's "Scaling out"), scrape one set of targets into the receiver; one
// agent is killed (SIGKILL) once the receiver took some samples, and
// started again; once the targets served every scrape, the agents stop
// (SIGTERM: they flush what they stored). Every series must arrive from exactly one agent (no
// overlap, no hole); samples may miss at most the one scrape per target of
// the killed agent that the kill caught between the target's answer and
// the commit.
func runScaleOut(ctx context.Context, res *Result, r Receiver, in *instance, walship, dir, conf string, s shape.Shape) error {
	base := time.Now().Add(time.Minute).Truncate(time.Second).UnixMilli()
	from, to := base-shape.Interval, base+int64(s.Scrapes+1)*shape.Interval
	srv := targets.New(s)
	tg := httptest.NewServer(srv.Handler())
	defer tg.Close()
	if err := resetTargets(tg.URL, base); err != nil {
		return err
	}
	agents := make([]*exec.Cmd, scaleAgents)
	args := make([][]string, scaleAgents)
	for i := range agents {
		c := strings.Replace(conf, "  external_labels:\n", fmt.Sprintf("  external_labels:\n    %s: '%d'\n", shardLabel, i), 1)
		c = agentConfig(c, tg.Listener.Addr().String(), s.Targets())
		c += fmt.Sprintf("      - {source_labels: [__metrics_path__], modulus: %d, target_label: __tmp_hash, action: hashmod}\n", scaleAgents)
		c += fmt.Sprintf("      - {source_labels: [__tmp_hash], regex: '%d', action: keep}\n", i)
		cfg := filepath.Join(dir, fmt.Sprintf("agent-%d.yml", i))
		if err := os.WriteFile(cfg, []byte(c), 0o644); err != nil {
			return err
		}
		args[i] = []string{"agent", "--config.file=" + cfg, "--storage.agent.path=" + filepath.Join(dir, fmt.Sprintf("agent-%d", i)), "--web.listen-address=127.0.0.1:0"}
	}
	run := func(i int) error {
		log, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("agent-%d.log", i)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer log.Close()
		agents[i] = exec.Command(walship, args[i]...)
		agents[i].Stdout, agents[i].Stderr = log, log
		return agents[i].Start()
	}
	for i := range agents {
		if err := run(i); err != nil {
			return err
		}
	}
	defer func() {
		for _, a := range agents {
			a.Process.Signal(syscall.SIGTERM)
			a.Wait()
		}
	}()
	read := func() ([]Series, error) { return r.read(ctx, in.base, from, to) }
	poll(ctx, func() bool { n, err := r.taken(ctx, in.metrics); return err == nil && n > 0 }, 5*time.Minute)
	agents[1].Process.Kill()
	agents[1].Wait()
	if err := run(1); err != nil {
		return err
	}
	// Once every scrape was served and has arrived (or 30 s after, when the
	// kill lost one), the agents stop, flushing what they stored.
	poll(ctx, srv.Done, 5*time.Minute)
	poll(ctx, func() bool { got, err := read(); return err == nil && count(got) >= res.Samples }, 30*time.Second)
	for _, a := range agents {
		a.Process.Signal(syscall.SIGTERM)
		if err := a.Wait(); err != nil {
			res.WalshipExit = max(res.WalshipExit, a.ProcessState.ExitCode())
		}
	}
	got, err := read()
	if err != nil {
		return err
	}
	// Strip the agent label; a series from two agents is an overlap.
	var merged []Series
	seen := map[string]bool{}
	for _, g := range got {
		ls := labels.NewBuilder(g.Labels).Del(shardLabel).Labels()
		if seen[ls.String()] {
			res.Overlap++
			continue
		}
		seen[ls.String()] = true
		merged = append(merged, Series{Labels: ls, Samples: g.Samples})
	}
	want := expected(s, base)
	for key := range want {
		if !seen[key] {
			res.Holes++
		}
	}
	compare(res, want, merged, r.Exact)
	res.Excused = (s.Targets() + scaleAgents - 1) / scaleAgents * shape.SeriesPerTarget
	res.Note = fmt.Sprintf("%d agents, hashmod over %d targets; agent 1 killed (SIGKILL) and restarted; %d series from two agents, %d from none",
		scaleAgents, s.Targets(), res.Overlap, res.Holes)
	return nil
}

// poll waits for cond, checking it every 100 ms, for at most timeout.
func poll(ctx context.Context, cond func() bool, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for !cond() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond) // polling the receiver, not synchronising
	}
}
