package remote_test

import (
	"net/http"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/remote"
)

// relabelled gives rw write_relabel_configs that drop the series i=1 and
// i=1x (of 20: 9 are kept), so that it is a lane of its own.
func relabelled(rw *config.RemoteWriteConfig) *config.RemoteWriteConfig {
	rw.WriteRelabelConfigs = []*relabel.Config{{SourceLabels: []model.LabelName{"i"}, Regex: relabel.MustNewRegexp("1.*"), Action: relabel.Drop}}
	return rw
}

// smallQueue gives rw a queue of 10 samples in one shard, sent 5 at a time.
func smallQueue(rw *config.RemoteWriteConfig) *config.RemoteWriteConfig {
	rw.QueueConfig.Capacity, rw.QueueConfig.MaxSamplesPerSend = 10, 5
	rw.QueueConfig.MinShards, rw.QueueConfig.MaxShards = 1, 1
	return rw
}

// An entry with other write_relabel_configs (a lane of its own, fed by
// its group's watcher) whose endpoint is down fills its small queue and
// then holds the others back for at most the group's lag: it leaves for a
// watcher of its own, from the group's saved position. a and b (one lane)
// get everything while d is down; once d is back it gets everything it
// keeps, nothing twice, after a bounded number of requests. Once it caught
// up, it is saved where the others are, and the next start ships to all
// three with one watcher again.
func TestLaneBehindLeaves(t *testing.T) {
	const lag = 300 * time.Millisecond
	g := newGroupRig(t, remote.Options{GroupLag: lag})
	a, b, d := testkit.NewReceiver(t), testkit.NewReceiver(t), testkit.NewReceiver(t)
	d.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	other := smallQueue(relabelled(remoteWriteConfig(t, "d", d.URL)))
	cfg := configWith(remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL), other)
	start := time.Now()
	require.NoError(t, g.rs.ApplyConfig(cfg))

	const series, scrapes = 20, 30
	for s := range scrapes {
		appendScrape(t, g.db, series, s)
	}
	require.Eventually(t, func() bool { return a.Distinct() == series*scrapes && b.Distinct() == series*scrapes }, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return g.watchers() == 2 }, 10*time.Second, time.Millisecond, "d did not leave")
	// d's queue, then its own pipeline's, retried with backoff (at most one
	// request per max_backoff, 50 ms, once it grew), never a storm.
	require.LessOrEqual(t, len(d.Requests()), 2*(10+int(time.Since(start)/(50*time.Millisecond))))
	require.Zero(t, d.Distinct())

	d.Respond(nil)
	for s := scrapes; s < 2*scrapes; s++ {
		appendScrape(t, g.db, series, s)
	}
	const kept = 9 // d drops i=1 and i=10..19
	require.Eventually(t, func() bool {
		return a.Distinct() == 2*series*scrapes && b.Distinct() == 2*series*scrapes && d.Distinct() == 2*kept*scrapes
	}, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, 2*series*scrapes, a, b)
	requireOnce(t, 2*kept*scrapes, d)
	require.Eventually(t, func() bool {
		return g.sent("a") == 2*series*scrapes && g.sent("b") == 2*series*scrapes && g.sent("d") == 2*kept*scrapes
	}, 10*time.Second, time.Millisecond, "a %v, b %v, d %v", g.sent("a"), g.sent("b"), g.sent("d"))

	g.reopen()
	require.NoError(t, g.rs.ApplyConfig(cfg))
	appendScrape(t, g.db, series, 2*scrapes)
	require.Eventually(t, func() bool {
		return a.Distinct() == series*(2*scrapes+1) && b.Distinct() == series*(2*scrapes+1) && d.Distinct() == kept*(2*scrapes+1)
	}, 20*time.Second, 5*time.Millisecond)
	require.Equal(t, 1, g.watchers(), "d did not rejoin")
	requireOnce(t, series*(2*scrapes+1), a, b)
	requireOnce(t, kept*(2*scrapes+1), d)
}

// Lanes take a record at their own pace: d's queue holds 10 samples and
// takes each record of 200 in pieces, while a's takes it whole. The tee
// hands each lane only what it has not got, so both get everything once,
// and d, which keeps up, stays in the group.
func TestLanesTakeRecordsAtTheirPace(t *testing.T) {
	g := newGroupRig(t, remote.Options{})
	a, d := testkit.NewReceiver(t), testkit.NewReceiver(t)
	other := smallQueue(relabelled(remoteWriteConfig(t, "d", d.URL)))
	require.NoError(t, g.rs.ApplyConfig(configWith(remoteWriteConfig(t, "a", a.URL), other)))

	const series, scrapes = 200, 10
	for s := range scrapes {
		appendScrape(t, g.db, series, s)
	}
	const kept = 89 // d drops i=1, 10..19 and 100..199
	require.Eventually(t, func() bool { return a.Distinct() == series*scrapes && d.Distinct() == kept*scrapes }, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, series*scrapes, a)
	requireOnce(t, kept*scrapes, d)
	require.Equal(t, 1, g.watchers(), "d left though it kept up")
}

// A lane of its own member saved behind the others and still down at a
// start does not catch up within the lag: it ships alone, and the group
// ships without it. Once its endpoint is back it gets everything it keeps
// once (two pipelines for it would send it all twice), and the next start
// loses nothing of it.
func TestLaneBehindDoesNotCatchUp(t *testing.T) {
	// The flush deadline is long enough for a loaded machine: a flush cut
	// short saves less than was sent, which is then sent again.
	g := newGroupRig(t, remote.Options{GroupLag: 300 * time.Millisecond, FlushDeadline: 5 * time.Second})
	a, d := testkit.NewReceiver(t), testkit.NewReceiver(t)
	other := smallQueue(relabelled(remoteWriteConfig(t, "d", d.URL)))
	cfg := configWith(remoteWriteConfig(t, "a", a.URL), other)
	const series, kept = 20, 9
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 10)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes && d.Distinct() == kept*g.scrapes }, 20*time.Second, 5*time.Millisecond)

	d.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	g.reopen()
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 20)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return g.watchers() == 2 }, 10*time.Second, time.Millisecond, "d did not leave")

	g.reopen() // d is behind a, and still down
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 5)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	d.Respond(nil)
	require.Eventually(t, func() bool { return d.Distinct() == kept*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, series*g.scrapes, a)
	requireOnce(t, kept*g.scrapes, d)

	g.reopen()
	require.NoError(t, g.rs.ApplyConfig(cfg))
	g.scrape(series, 5)
	require.Eventually(t, func() bool { return a.Distinct() == series*g.scrapes && d.Distinct() == kept*g.scrapes }, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, series*g.scrapes, a)
	requireOnce(t, kept*g.scrapes, d)
}

// The first lane (the one the others' caches mirror: its series cache
// holds the series they leave as they are) falls behind and leaves: the
// lane that stays gets every sample it keeps once, of the series it knew
// and of new ones stored after the leave, and so does the first lane's
// endpoint once it is back.
func TestLaneFirstBehindLeaves(t *testing.T) {
	g := newGroupRig(t, remote.Options{GroupLag: 300 * time.Millisecond})
	a, d := testkit.NewReceiver(t), testkit.NewReceiver(t)
	a.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	require.NoError(t, g.rs.ApplyConfig(configWith(smallQueue(remoteWriteConfig(t, "a", a.URL)), relabelled(remoteWriteConfig(t, "d", d.URL)))))

	const scrapes = 30
	g.scrape(20, scrapes)
	const kept20 = 9 // d drops i=1 and i=10..19
	require.Eventually(t, func() bool { return d.Distinct() == kept20*scrapes }, 20*time.Second, 5*time.Millisecond)

	// With a still down, d gets what follows: a left (its watcher bears
	// the name of the group's, whose lead it was).
	g.scrape(40, scrapes) // 20 new series
	const kept40 = 29
	require.Eventually(t, func() bool { return d.Distinct() == (kept20+kept40)*scrapes }, 20*time.Second, 5*time.Millisecond)
	require.Zero(t, a.Distinct())
	a.Respond(nil)
	require.Eventually(t, func() bool { return a.Distinct() == 60*scrapes }, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, 60*scrapes, a)
	requireOnce(t, (kept20+kept40)*scrapes, d)
}

// Lanes of both protocols: each RW2 lane shares the series of the first
// RW2 lane (e, which relabels nothing), not of the RW1 one (a). Every
// endpoint gets every sample it keeps once.
func TestLanesOfTwoProtocols(t *testing.T) {
	g := newGroupRig(t, remote.Options{})
	a, d, e := testkit.NewReceiver(t), testkit.NewReceiver(t), testkit.NewReceiver(t)
	rw2 := func(rw *config.RemoteWriteConfig) *config.RemoteWriteConfig {
		rw.ProtobufMessage = remoteapi.WriteV2MessageType
		return rw
	}
	cfg := configWith(rw2(relabelled(remoteWriteConfig(t, "d", d.URL))), remoteWriteConfig(t, "a", a.URL), rw2(remoteWriteConfig(t, "e", e.URL)))
	require.NoError(t, g.rs.ApplyConfig(cfg))

	const series, kept = 40, 29 // d drops i=1 and i=10..19
	g.scrape(series, 10)
	require.Eventually(t, func() bool {
		return a.Distinct() == series*g.scrapes && e.Distinct() == series*g.scrapes && d.Distinct() == kept*g.scrapes
	}, 20*time.Second, 5*time.Millisecond)
	requireOnce(t, series*g.scrapes, a, e)
	requireOnce(t, kept*g.scrapes, d)
	require.Equal(t, 1, g.watchers())
}
