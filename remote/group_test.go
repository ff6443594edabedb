package remote_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/watcher"
)

// groupRig is a TSDB whose WAL a Storage ships, with a registry to read
// the metrics from.
type groupRig struct {
	t       *testing.T
	db      *tsdb.DB
	rs      *remote.Storage
	reg     *prometheus.Registry
	opts    remote.Options
	scrapes int   // appended by scrape
	lastT   int64 // scrapeNow's last timestamp
}

func newGroupRig(t *testing.T, opts remote.Options) *groupRig {
	dir := t.TempDir()
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	opts.WALDir, opts.PositionsDir = filepath.Join(dir, "wal"), filepath.Join(t.TempDir(), "positions")
	g := &groupRig{t: t, db: db, opts: opts}
	g.reopen()
	return g
}

// scrape appends n more scrapes of series series (g.scrapes counts them).
func (g *groupRig) scrape(series, n int) {
	for range n {
		appendScrape(g.t, g.db, series, g.scrapes)
		g.scrapes++
	}
}

// scrapeNow appends a scrape of series series stamped with the time now,
// as "--wal.start=now" filters by it (g.scrapes counts it).
func (g *groupRig) scrapeNow(series int) {
	g.lastT = max(time.Now().UnixMilli(), g.lastT+1) // two scrapes in one millisecond would clash
	app := g.db.Appender(context.Background())
	for i := range series {
		_, err := app.Append(0, labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), g.lastT, float64(g.scrapes))
		require.NoError(g.t, err)
	}
	require.NoError(g.t, app.Commit())
	g.scrapes++
}

// reopen closes the storage (when open) and opens a new one on the same
// WAL and positions, with a new registry.
func (g *groupRig) reopen() {
	if g.rs != nil {
		require.NoError(g.t, g.rs.Close())
	}
	g.reg = prometheus.NewRegistry()
	opts := g.opts
	opts.Registerer = g.reg
	rs := remote.New(opts)
	g.t.Cleanup(func() { rs.Close() })
	g.db.SetWriteNotified(rs)
	g.rs = rs
}

// watchers returns how many WAL watchers (consumers) the storage runs.
func (g *groupRig) watchers() int {
	mfs, err := g.reg.Gather()
	require.NoError(g.t, err)
	for _, mf := range mfs {
		if mf.GetName() == "prometheus_wal_watcher_current_segment" {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func (g *groupRig) sent(name string) float64 {
	return testkit.Metric(g.t, g.reg, "prometheus_remote_storage_samples_total", "remote_name", name)
}

// requireOnce fails unless every receiver got every sample exactly once.
func requireOnce(t *testing.T, want int, rs ...*testkit.Receiver) {
	t.Helper()
	for _, r := range rs {
		seen := r.Seen()
		require.Len(t, seen, want)
		for k, n := range seen {
			require.Equal(t, 1, n, "%s received %d times at %s", k, n, r.URL)
		}
	}
}

// Three entries whose requests are the same bytes are shipped by one
// watcher and one queue; each receiver gets every sample once and each
// entry's metrics count what it was sent. An entry with other
// write_relabel_configs gets a queue of its own, fed by the same watcher.
func TestGroupSharesOnePipeline(t *testing.T) {
	g := newGroupRig(t, remote.Options{})
	a, b, c, d := testkit.NewReceiver(t), testkit.NewReceiver(t), testkit.NewReceiver(t), testkit.NewReceiver(t)
	other := relabelled(remoteWriteConfig(t, "d", d.URL))
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL), remoteWriteConfig(t, "c", c.URL), other)))

	const series, scrapes = 20, 30
	for s := range scrapes {
		appendScrape(t, g.db, series, s)
	}
	require.Eventually(t, func() bool {
		return a.Distinct() == series*scrapes && b.Distinct() == series*scrapes && c.Distinct() == series*scrapes && d.Distinct() == 9*scrapes
	}, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, series*scrapes, a, b, c)
	require.Eventually(t, func() bool {
		return g.sent("a") == series*scrapes && g.sent("b") == series*scrapes && g.sent("c") == series*scrapes && g.sent("d") == 9*scrapes
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, 1, g.watchers(), "one watcher for a, b, c and d")
	require.Zero(t, g.recordsRead("d"), "d has a watcher of its own")

	// A reload that changes d restarts its group: a, b and c start again
	// from where they were, and nobody gets anything twice.
	requests := len(a.Requests())
	other2 := *other
	other2.QueueConfig.MaxSamplesPerSend = 7
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL), remoteWriteConfig(t, "c", c.URL), &other2)))
	appendScrape(t, g.db, series, scrapes)
	require.Eventually(t, func() bool {
		return a.Distinct() == series*(scrapes+1) && b.Distinct() == series*(scrapes+1) && c.Distinct() == series*(scrapes+1) && d.Distinct() == 9*(scrapes+1)
	}, 20*time.Second, 5*time.Millisecond)
	require.Less(t, requests, len(a.Requests()))
	requireOnce(t, series*(scrapes+1), a, b, c)
	require.Eventually(t, func() bool { return int(g.sent("a")) == series*(scrapes+1) }, 10*time.Second, time.Millisecond)
}

// A member that fails while the others take the requests holds them back
// for at most the group's lag, then leaves the group for a queue of its
// own, which resends from the group's saved position once it is back:
// nobody loses or gets anything twice, and the down member got a bounded
// number of requests. Once it caught up, it is saved where the group is,
// and the next start ships to all three with one pipeline again.
//
// The lag is long enough that a and c, which take everything, are never
// late themselves: one answering the lag after the other (a starved test
// process: -race, several packages at once) would leave too, and be sent
// again what it took.
func TestGroupLateMemberLeaves(t *testing.T) {
	const lag = 2 * time.Second
	g := newGroupRig(t, remote.Options{GroupLag: lag})
	a, b, c := testkit.NewReceiver(t), testkit.NewReceiver(t), testkit.NewReceiver(t)
	b.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL), remoteWriteConfig(t, "c", c.URL))))

	const series, scrapes = 20, 30
	for s := range scrapes {
		appendScrape(t, g.db, series, s)
	}
	require.Eventually(t, func() bool { return a.Distinct() == series*scrapes && c.Distinct() == series*scrapes }, 20*time.Second, 5*time.Millisecond)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, 2, g.watchers(), "b did not leave its group, or another member left too")
	}, 10*time.Second, time.Millisecond)
	// While down, b gets its queue's retries (backoff 1-50 ms) and, before
	// it left, the group's for at most the lag.
	require.Less(t, len(b.Requests()), 200)
	b.Respond(nil)
	for s := scrapes; s < 2*scrapes; s++ {
		appendScrape(t, g.db, series, s)
	}
	require.Eventually(t, func() bool {
		return a.Distinct() == 2*series*scrapes && b.Distinct() == 2*series*scrapes && c.Distinct() == 2*series*scrapes
	}, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, 2*series*scrapes, a, b, c)
	require.Eventually(t, func() bool {
		return g.sent("a") == 2*series*scrapes && g.sent("b") == 2*series*scrapes && g.sent("c") == 2*series*scrapes
	}, 10*time.Second, time.Millisecond, "a %v, b %v, c %v", g.sent("a"), g.sent("b"), g.sent("c"))

	g.reopen()
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL), remoteWriteConfig(t, "c", c.URL))))
	appendScrape(t, g.db, series, 2*scrapes)
	require.Eventually(t, func() bool {
		return a.Distinct() == series*(2*scrapes+1) && b.Distinct() == series*(2*scrapes+1) && c.Distinct() == series*(2*scrapes+1)
	}, 20*time.Second, 5*time.Millisecond)
	require.Equal(t, 1, g.watchers(), "b did not rejoin its group")
	requireOnce(t, series*(2*scrapes+1), a, b, c)
}

// A member that refuses for good what the others take leaves the group at
// once; its own queue then counts what it refuses as failed, as a lone
// endpoint's does, and the others get everything.
func TestGroupRefusingMemberLeaves(t *testing.T) {
	g := newGroupRig(t, remote.Options{})
	a, b := testkit.NewReceiver(t), testkit.NewReceiver(t)
	b.Respond(testkit.Refuse(http.StatusBadRequest))
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL))))

	const series, scrapes = 20, 30
	for s := range scrapes {
		appendScrape(t, g.db, series, s)
	}
	require.Eventually(t, func() bool { return a.Distinct() == series*scrapes }, 20*time.Second, 5*time.Millisecond)
	failed := func() float64 {
		return testkit.Metric(t, g.reg, "prometheus_remote_storage_samples_failed_total", "remote_name", "b")
	}
	require.Eventually(t, func() bool { return failed() == series*scrapes }, 10*time.Second, time.Millisecond, "b failed %v", failed())
	require.Zero(t, g.sent("b"))
	require.Zero(t, testkit.Metric(t, g.reg, "prometheus_remote_storage_samples_failed_total", "remote_name", "a"))
	require.Equal(t, 2, g.watchers())
	requireOnce(t, series*scrapes, a)
}

// While every member fails, the group is one endpoint to its queue: it
// retries with the queue's backoff (a bounded number of requests), nobody
// leaves, and once they are back each gets everything once. When every
// member refuses a request for good, it is counted failed for each of
// them, and still nobody leaves.
func TestGroupSharedAnswers(t *testing.T) {
	g := newGroupRig(t, remote.Options{GroupLag: 50 * time.Millisecond})
	a, b := testkit.NewReceiver(t), testkit.NewReceiver(t)
	a.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	b.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL))))

	const series = 20
	appendScrape(t, g.db, series, 0)
	retried := func() float64 {
		return testkit.Metric(t, g.reg, "prometheus_remote_storage_samples_retried_total", "remote_name", "b")
	}
	require.Eventually(t, func() bool { return retried() >= 10*series }, 10*time.Second, time.Millisecond)
	a.Respond(nil)
	b.Respond(nil)
	require.Eventually(t, func() bool { return a.Distinct() == series && b.Distinct() == series }, 10*time.Second, time.Millisecond)
	require.Equal(t, 1, g.watchers(), "a member left though all failed alike")

	for _, r := range []*testkit.Receiver{a, b} {
		r.Respond(testkit.Refuse(http.StatusBadRequest))
	}
	appendScrape(t, g.db, series, 1)
	failed := func(name string) float64 {
		return testkit.Metric(t, g.reg, "prometheus_remote_storage_samples_failed_total", "remote_name", name)
	}
	require.Eventually(t, func() bool { return failed("a") == series && failed("b") == series }, 10*time.Second, time.Millisecond)
	require.Equal(t, 1, g.watchers(), "a member left though all refused alike")
	require.Equal(t, float64(series), g.sent("a"))
	require.Equal(t, float64(series), g.sent("b"))
	requireOnce(t, series, a, b)
}

// recordsRead returns how many WAL records the watcher named consumer read.
func (g *groupRig) recordsRead(consumer string) float64 {
	return testkit.Metric(g.t, g.reg, "prometheus_wal_watcher_records_read_total", "consumer", consumer)
}

// Entries saved near each other but not at the same place (b left its
// group while its endpoint was down) regroup at the next start: b first
// catches up alone to where a is, then one pipeline ships to both. Nobody
// gets anything twice; b's own watcher stops reading once it caught up.
// While b's endpoint is still down at a start, b does not catch up within
// the lag and ships alone.
func TestGroupMemberBehindCatchesUp(t *testing.T) {
	g := newGroupRig(t, remote.Options{GroupLag: 300 * time.Millisecond, FlushDeadline: time.Second})
	a, b := testkit.NewReceiver(t), testkit.NewReceiver(t)
	cfg := configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL))
	const series = 20
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 10)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes && b.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)

	b.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	g.reopen() // both saved at the same place
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 20)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return g.watchers() == 2 }, 10*time.Second, time.Millisecond, "b did not leave its group")

	g.reopen() // b is behind a, and still down: it ships alone
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 5)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	require.Zero(t, b.Distinct()-series*10)

	b.Respond(nil)
	require.Eventually(t, func() bool { return b.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	g.reopen() // b caught up alone meanwhile: saved where a is
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 5)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes && b.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, series*g.scrapes, a, b)

	// Behind again (b down right after a start: it leaves at the position
	// the group started at), then back before the next start. (A member
	// that leaves later is sent again what the group acknowledged since it
	// last saved its position.)
	g.reopen()
	b.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 5)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return g.watchers() == 2 }, 10*time.Second, time.Millisecond, "b did not leave its group")
	g.reopen()
	b.Respond(nil)
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 5)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes && b.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	read := g.recordsRead("b")
	g.scrape(series, 5)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes && b.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	require.Equal(t, read, g.recordsRead("b"), "b still has a watcher of its own: it did not rejoin")
	requireOnce(t, series*g.scrapes, a, b)
}

// With --wal.start=now, a member down from the start leaves its group
// before anything was acknowledged. It starts where the group's "now"
// began, not at a later one: once back it gets exactly what the others
// got, nothing older and nothing twice.
func TestGroupLeaverFromNowLosesNothing(t *testing.T) {
	g := newGroupRig(t, remote.Options{GroupLag: 300 * time.Millisecond, Start: watcher.FromNow})
	a, b := testkit.NewReceiver(t), testkit.NewReceiver(t)
	b.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL))))

	const series = 20
	scrapeNow := func() { g.scrapeNow(series) }
	// Scrapes from before the group's start (some, not all, may be) until
	// well after it: a gets those after it.
	require.Eventually(t, func() bool { scrapeNow(); return a.Distinct() > 0 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return g.watchers() == 2 }, 10*time.Second, time.Millisecond, "b did not leave its group")
	b.Respond(nil)
	scrapeNow()
	require.Eventually(t, func() bool { return a.Distinct() == b.Distinct() && a.Distinct() >= series*2 }, 20*time.Second, 5*time.Millisecond,
		"a has %d samples, b %d", a.Distinct(), b.Distinct())
	require.Equal(t, slices.Sorted(maps.Keys(a.Seen())), slices.Sorted(maps.Keys(b.Seen())))
	requireOnce(t, a.Distinct(), a, b)
}

// With --wal.start=now, a reload that changes one entry restarts its
// group; the others resume where they were saved instead of at the
// reload's now. a refuses everything until after the reload, and then
// gets every sample b got, the ones written before the reload included.
func TestGroupReloadFromNowResumes(t *testing.T) {
	g := newGroupRig(t, remote.Options{GroupLag: time.Minute, FlushDeadline: 100 * time.Millisecond, Start: watcher.FromNow})
	a, b := testkit.NewReceiver(t), testkit.NewReceiver(t)
	a.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	cfgB := smallQueue(remoteWriteConfig(t, "b", b.URL)) // a lane of its own
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), cfgB)))

	const series = 20
	require.Eventually(t, func() bool { g.scrapeNow(series); return b.Distinct() > 0 }, 10*time.Second, 10*time.Millisecond)
	g.scrapeNow(series)
	require.Eventually(t, func() bool { return gotScrape(b, g.scrapes-1) }, 10*time.Second, time.Millisecond)
	require.Zero(t, a.Distinct())

	changed := *cfgB
	changed.QueueConfig.MaxSamplesPerSend = 7
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), &changed)))
	a.Respond(nil)
	before := g.scrapes
	require.Eventually(t, func() bool { g.scrapeNow(series); return gotScrape(b, g.scrapes-1) }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return a.Distinct() == b.Distinct() }, 20*time.Second, 5*time.Millisecond,
		"a has %d samples, b %d", a.Distinct(), b.Distinct())
	require.Equal(t, slices.Sorted(maps.Keys(b.Seen())), slices.Sorted(maps.Keys(a.Seen())))
	require.Greater(t, a.Distinct(), series*(g.scrapes-before), "a got what was written before the reload")
	requireOnce(t, a.Distinct(), a)
}

// gotScrape reports whether r accepted a sample of scrape s (its value).
func gotScrape(r *testkit.Receiver, s int) bool {
	for _, samples := range r.Samples() {
		for _, x := range samples {
			if x.Value == float64(s) {
				return true
			}
		}
	}
	return false
}

// With --wal.start=now, an entry a reload removes and a later one adds
// back starts at that reload's now: it is not sent what was written while
// it was gone, as a new entry would not be.
func TestGroupReaddedFromNowStartsAfresh(t *testing.T) {
	g := newGroupRig(t, remote.Options{Start: watcher.FromNow})
	a, b := testkit.NewReceiver(t), testkit.NewReceiver(t)
	both := configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL))
	require.NoError(t, g.rs.ApplyConfig(both))
	const series = 20
	require.Eventually(t, func() bool { g.scrapeNow(series); return a.Distinct() > 0 && b.Distinct() > 0 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL))))
	gone := g.scrapes
	g.scrapeNow(series)
	g.scrapeNow(series)
	require.Eventually(t, func() bool { return gotScrape(a, g.scrapes-1) }, 10*time.Second, time.Millisecond)

	require.NoError(t, g.rs.ApplyConfig(both))
	seen := b.Distinct()
	require.Eventually(t, func() bool { g.scrapeNow(series); return b.Distinct() > seen }, 10*time.Second, 10*time.Millisecond)
	g.scrapeNow(series)
	require.Eventually(t, func() bool { return gotScrape(a, g.scrapes-1) && gotScrape(b, g.scrapes-1) }, 10*time.Second, time.Millisecond)
	for s := gone; s < gone+2; s++ {
		require.False(t, gotScrape(b, s), "b was sent scrape %d, written while it was not configured", s)
	}
	requireOnce(t, a.Distinct(), a)
}
