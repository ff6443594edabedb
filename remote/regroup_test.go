package remote_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/remote"
)

func (g *groupRig) regroups() float64 {
	return testkit.Metric(g.t, g.reg, "walship_remote_storage_regroups_total")
}

// A member whose endpoint is down leaves its group and ships alone, with a
// watcher of its own; so does a lane of its own (other
// write_relabel_configs). While it is down it does not keep up, and the
// group stays split. Once its endpoint is back and it has kept up with
// the others for RegroupAfter, the group re-forms while running, once: one
// watcher reads for both again, and each receiver got every sample it
// keeps once.
func TestGroupRegroupsWhileRunning(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*config.RemoteWriteConfig) *config.RemoteWriteConfig
		kept int // of 20 series
	}{
		{"member", func(rw *config.RemoteWriteConfig) *config.RemoteWriteConfig { return rw }, 20},
		{"lane", func(rw *config.RemoteWriteConfig) *config.RemoteWriteConfig { return smallQueue(relabelled(rw)) }, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Well above the watchers' save interval (a second): a member
			// that just left is saved where the group was last saved,
			// until the group saves again.
			const after = 3 * time.Second
			g := newGroupRig(t, remote.Options{GroupLag: 300 * time.Millisecond, RegroupAfter: after})
			a, b := testkit.NewReceiver(t), testkit.NewReceiver(t)
			b.Respond(testkit.Refuse(http.StatusServiceUnavailable))
			start := time.Now()
			require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), tc.cfg(remoteWriteConfig(t, "b", b.URL)))))

			const series = 20
			g.scrape(series, 30)
			require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
			require.Eventually(t, func() bool { return g.watchers() == 2 }, 10*time.Second, time.Millisecond, "b did not leave its group")
			// Down, b is saved where it left while a is saved further on:
			// for twice the time it would take, with b's requests (its
			// queue's backoff) coming, the group does not re-form.
			left, sent := time.Now(), len(b.Requests())
			require.Eventually(t, func() bool { return time.Since(left) > 2*after && len(b.Requests()) > sent+10 }, 20*time.Second, 10*time.Millisecond)
			require.Zero(t, g.regroups(), "the group re-formed while b was down")
			// b's queue, then its own pipeline's, retried with backoff (at
			// most one request per max_backoff, 50 ms, once it grew).
			require.LessOrEqual(t, len(b.Requests()), 2*(10+int(time.Since(start)/(50*time.Millisecond))))

			b.Respond(nil)
			require.Eventually(t, func() bool { return b.Distinct() == tc.kept*g.scrapes }, 20*time.Second, 5*time.Millisecond)
			require.Eventually(t, func() bool { return g.regroups() == 1 }, 20*time.Second, time.Millisecond, "the group did not re-form")

			read := g.recordsRead("b")
			g.scrape(series, 10)
			require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes && b.Distinct() == tc.kept*g.scrapes }, 20*time.Second, 5*time.Millisecond)
			require.Equal(t, read, g.recordsRead("b"), "b still has a watcher of its own")
			requireOnce(t, series*g.scrapes, a)
			requireOnce(t, tc.kept*g.scrapes, b)
			require.Equal(t, 1.0, g.regroups())
		})
	}
}
