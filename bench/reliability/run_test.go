package reliability

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The short form of `make reliability` (in `make test`): every scenario
// with walship's sidecar, the kills with its agent, at a small size; each
// must account for every sample written and lose none.
func TestShortForm(t *testing.T) {
	walship := builtWalship(t)
	o := Options{
		Binaries:    Binaries{Walship: walship},
		Work:        t.TempDir(),
		Series:      500,
		Interval:    200 * time.Millisecond,
		Protocol:    "rw1",
		SegmentSize: 64 << 10,
		Kills:       3,
		MaxRun:      2 * time.Second,
		MaxDown:     500 * time.Millisecond,
		Outage:      3 * time.Second,
		Flap:        4 * time.Second,
		Reloads:     4,
		Settle:      time.Second,
		Quiet:       3 * time.Second,
		Seed:        uint64(time.Now().UnixNano()),
	}
	t.Logf("seed %d", o.Seed)
	runs := []struct{ scenario, sender string }{
		{"kill", "sidecar"}, {"outage-kill", "sidecar"}, {"flap", "sidecar"}, {"kill", "agent"}, {"kill-truncate", "agent"}, {"kill-checkpoint", "agent"}, {"kill-delete", "agent"}, {"reload", "agent"},
		{"outage-truncate", "sidecar"}, {"corrupt", "sidecar"}, {"corrupt-checkpoint", "agent"}, {"disk-full", "agent"}, {"fs-faults", "agent"},
	}
	for _, c := range runs {
		t.Run(c.scenario+"/"+c.sender, func(t *testing.T) {
			o := o
			switch c.scenario {
			case "outage-truncate":
				// Long enough for the sidecar to fall behind by segments
				// the server then deletes.
				o.Outage = 12 * time.Second
			case "corrupt":
				// Long enough for segments the sidecar cannot have read,
				// of four pages, so that records follow the damage in them.
				o.Outage = 30 * time.Second
				o.SegmentSize = 4 * walPage
			case "fs-faults":
				// Two seconds of each fault: positions are saved every
				// second, truncations start every two, and segments of a
				// page fill in about two, so that each fault meets a
				// save and, most often, a truncation and a full segment.
				o.Outage = 8 * time.Second
				o.SegmentSize = walPage
			}
			if o.Outage > 10*time.Second {
				// Its backoff has reached max_backoff (5 s) when the
				// endpoint comes back: quiet means longer than that.
				o.Quiet = 6 * time.Second
			}
			res := Run(context.Background(), c.scenario, Senders[c.sender], o)
			t.Logf("%+v", res)
			if strings.Contains(res.Err, ErrNoMount.Error()) || strings.Contains(res.Err, ErrNoFUSE.Error()) {
				t.Skip(res.Err) // not root, or no /dev/fuse: no tmpfs, no FUSE
			}
			if res.Err != "" {
				t.Fatal(res.Err)
			}
			if c.scenario == "outage-truncate" {
				// Segments deleted unread are lost, but never silently.
				if res.Written == 0 || res.Unknown != 0 || res.Delivered+res.Lost != res.Written || (res.Lost > 0 && res.Reported == 0) {
					t.Fatalf("%d written, %d delivered, %d lost (%d reported), %d accepted that the WAL does not hold", res.Written, res.Delivered, res.Lost, res.Reported, res.Unknown)
				}
				return
			}
			if c.scenario == "corrupt-checkpoint" {
				// The agent opens its damaged checkpoint; what is lost is
				// the unsent samples of the series whose records the damage
				// reached, reported as dropped; nothing else.
				if len(res.Damaged) != 1 || res.DamageUnlogged > 0 || res.Lost > res.Reported || res.Unknown != 0 || res.Runs != 2 || res.Delivered+res.Lost != res.Written {
					t.Fatalf("%d written, %d delivered, %d lost (%d reported), %d unknown, %d processes; damaged: %q", res.Written, res.Delivered, res.Lost, res.Reported, res.Unknown, res.Runs, res.Damaged)
				}
				return
			}
			if c.scenario == "corrupt" {
				// Damaged segments lose the records the damage reached,
				// logged; nothing else.
				if len(res.Damaged) != len(damages) || res.DamageUnlogged > 0 || res.Lost != res.LostDamaged || res.LostAfterDamage != 0 || res.Unknown != 0 || res.Delivered+res.Lost != res.Written {
					t.Fatalf("%d written, %d delivered, %d lost (%d in damaged segments, %d a page or more after the damage), %d unknown; damaged: %q", res.Written, res.Delivered, res.Lost, res.LostDamaged, res.LostAfterDamage, res.Unknown, res.Damaged)
				}
				return
			}
			if c.scenario == "disk-full" && res.CommitsFailed == 0 {
				t.Fatal("no commit failed: the disk never filled")
			}
			if c.scenario == "fs-faults" && (res.CommitsFailed == 0 || res.Refused["write"] == 0 || res.Refused["fsync"] == 0 || res.Refused["rename"] == 0 || res.Refused["create"] == 0) {
				t.Fatalf("%d commits failed, refused %v: a fault never reached the agent", res.CommitsFailed, res.Refused)
			}
			if res.Written == 0 || res.Lost != 0 || res.Unknown != 0 || res.Orphaned != 0 || res.Delivered != res.Written {
				t.Fatalf("%d written, %d delivered, %d lost, %d accepted that the WAL does not hold, %d of series unreadable", res.Written, res.Delivered, res.Lost, res.Unknown, res.Orphaned)
			}
			if res.Runs != 1+map[string]int{"kill": o.Kills, "kill-truncate": o.Kills, "kill-checkpoint": o.Kills, "kill-delete": o.Kills, "outage-kill": 1}[c.scenario] {
				t.Fatalf("%d processes started", res.Runs)
			}
		})
	}
}

// builtWalship returns the path of make build's bin/walship, or skips t
// when it is not built.
func builtWalship(t *testing.T) string {
	t.Helper()
	walship, err := filepath.Abs("../../bin/walship")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(walship); err != nil {
		t.Skip("bin/walship is not built (make build): ", err)
	}
	return walship
}
