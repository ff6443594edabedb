package reliability

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// This file injects each scenario's faults into a running sender: kills,
// outages, a flapping endpoint, reloads, damaged segments, a full or
// failing disk.

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
		return r.outage(ctx, func(time.Time) error {
			if scenario != "outage-kill" {
				return nil
			}
			at := time.Duration(r.rng.Int64N(int64(r.o.Outage / 2)))
			if err := sleep(ctx, at); err != nil {
				return err
			}
			res.Injected += fmt.Sprintf(", SIGKILL %s into it", at.Round(time.Second))
			return r.kill(ctx)
		})
	case "corrupt":
		res.Injected = fmt.Sprintf("503 for %s; in it, WAL the sender had not read damaged: %s", r.o.Outage, damageKinds())
		return r.outage(ctx, func(end time.Time) error { return r.corrupt(ctx, end) })
	case "corrupt-checkpoint":
		res.Injected = fmt.Sprintf("503 for %s; in it a SIGKILL, a page of the newest checkpoint zeroed, a restart (%s)", r.o.Outage, strings.Join(r.s.truncating, " "))
		if err := r.waitFinishedCheckpoint(ctx); err != nil {
			return back, err
		}
		return r.outage(ctx, func(end time.Time) error {
			if err := sleep(ctx, time.Until(end)/2); err != nil { // unsent samples pile up
				return err
			}
			r.proc.Kill()
			r.exited()
			if err := r.damageCheckpoint(); err != nil {
				return err
			}
			return r.start()
		})
	case "disk-full":
		res.Injected = fmt.Sprintf("its data directory (a %d MiB tmpfs) filled to the last byte for %s, then freed", diskSize>>20, r.o.Outage)
		var err error
		if back, err = r.diskFull(ctx, r.o.Outage); err != nil {
			return back, err
		}
	case "fs-faults":
		res.Injected = r.fsFaultsInjected()
		var err error
		if back, err = r.fsFaults(ctx, r.o.Outage); err != nil {
			return back, err
		}
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

// outage has the recorder answer 503 for the outage's length, running
// during (given the outage's end) inside it, and returns when the
// endpoint came back.
func (r *run) outage(ctx context.Context, during func(end time.Time) error) (back time.Time, err error) {
	r.rec.SetMode(Down)
	end := time.Now().Add(r.o.Outage)
	if err := during(end); err != nil {
		return back, err
	}
	if err := sleep(ctx, time.Until(end)); err != nil {
		return back, err
	}
	r.rec.SetMode(Healthy)
	return time.Now(), nil
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
