package main_test

import (
	"math/rand"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// Upstream Prometheus's remote-write sender, run as a sidecar over a live
// WAL, lost 15% of the samples when it was killed five times, and 27% when
// it was killed once during an endpoint outage: its watcher restarts at
// "now". These tests are walship's answer: nothing is lost.

const (
	killSeries   = 100                   // series per scrape
	killInterval = 20 * time.Millisecond // between scrapes: 5,000 samples/s

	// The sidecar's watcher saves its acknowledged position every
	// SaveInterval (watcher.Options default, the binary has no flag for it).
	saveInterval = time.Second
	// saveSlack is what a save may come later than saveInterval after the
	// previous one (or after the web server of a new run listens): the
	// watcher starting, the periodic check running on its next wake-up
	// (the WAL is written every 20ms, so that is soon), the fsyncs.
	saveSlack = 2 * time.Second
	// inFlight is how old, at most, a sample not yet acknowledged when the
	// position is saved can be: the receiver answers at once, a batch
	// leaves after batch_send_deadline (100ms) at the latest, and the
	// watcher reads new records as soon as it is woken.
	inFlight = time.Second
)

// The sidecar tails the WAL of an upstream TSDB that is written all the
// time (segments rotate) and is SIGKILLed five times at random moments,
// each time restarted. Nothing is lost: every (series, timestamp) written
// arrives, with the value written.
//
// Duplicates: a restart resends from the last saved position, so what is
// delivered more than once was delivered after that save. Run k's last
// save, when the run lived at least saveInterval+saveSlack, was at
// lastSave_k >= death_k - saveInterval - saveSlack; when it lived less,
// the saved position is the one of an earlier run (none for the first:
// the beginning). At that save every sample older than inFlight had been
// acknowledged. So kill k can make a sample arrive once more only if its
// commit ended after lastSave_k - inFlight and began before the death.
// Each sample must arrive at most 1 + (the number of kills whose window
// holds it) times (never more than kills+1), and the duplicates, summed,
// stay within the windows' samples.
func TestSidecarSurvivesKills(t *testing.T) {
	const (
		kills  = 5
		minRun = 300 * time.Millisecond
		maxRun = 7500 * time.Millisecond // some runs save, some do not
	)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))

	w := startScrapeWriter(t, "kill_test", killSeries, killInterval)
	recv := testkit.NewReceiver(t)
	work := t.TempDir()
	args := []string{"sidecar", "--config.file", sidecarConfig(t, work, recv.URL), "--wal.dir", w.walDir,
		"--storage.agent.path", filepath.Join(work, "agent"), "--storage.remote.flush-deadline", "5s"}
	// Some data is there before the sidecar first starts.
	require.Eventually(t, func() bool { return w.count() >= 20 }, 10*time.Second, 5*time.Millisecond)

	type run struct{ started, died time.Time }
	var runs []run
	var p *process
	for k := 0; ; k++ {
		p = start(t, work, true, args...)
		started := time.Now()
		if k == kills {
			break
		}
		<-time.After(minRun + time.Duration(rng.Int63n(int64(maxRun-minRun))))
		runs = append(runs, run{started: started, died: kill(t, p)})
		t.Logf("run %d: killed after %v, %d scrapes written", k, runs[k].died.Sub(started).Round(time.Millisecond), w.count())
	}
	// The last run ships what is written now, then writing stops.
	after := w.count()
	require.Eventually(t, func() bool { return w.tally(recv, w.count()).newest > after }, 20*time.Second, 20*time.Millisecond,
		"the last run ships nothing")
	w.stop()
	scrapes := w.scrapes()
	assert.Eventually(t, func() bool { return w.tally(recv, len(scrapes)).missing == 0 }, 30*time.Second, 50*time.Millisecond)
	tl := w.tally(recv, len(scrapes))
	require.Zero(t, tl.missing, "samples lost: %d of %d, first %s", tl.missing, tl.written, tl.firstMiss)
	p.signal(syscall.SIGTERM)
	require.Equal(t, 0, p.wait(20*time.Second))
	require.Zero(t, tl.wrongValue, "samples arrived with another value")
	require.Greater(t, len(walEntries(t, w.walDir)), kills, "the TSDB rotated segments during the test")

	// The duplicate bound.
	var lastSave time.Time // zero: no save yet, the beginning
	windowStart := make([]time.Time, kills)
	for k, r := range runs {
		if r.died.Sub(r.started) >= saveInterval+saveSlack {
			lastSave = r.died.Add(-saveInterval - saveSlack)
		}
		windowStart[k] = lastSave.Add(-inFlight)
		if lastSave.IsZero() {
			windowStart[k] = time.Time{}
		}
	}
	bound := 0
	for i, sc := range scrapes {
		allowed := 1
		for k, r := range runs {
			if !sc.to.Before(windowStart[k]) && sc.from.Before(r.died) {
				allowed++
			}
		}
		bound += (allowed - 1) * killSeries
		for s, n := range tl.times[i] {
			require.LessOrEqual(t, n, allowed, "series %d scrape %d delivered %d times, at most %d may", s, i+1, n, allowed)
		}
	}
	require.LessOrEqual(t, tl.maxTimes, kills+1)
	require.LessOrEqual(t, tl.extra, bound)
	reqs, got := recv.Accepted().Requests, recv.Accepted().Samples
	t.Logf("%d samples written (%d scrapes of %d series), all delivered; %d delivered more than once, %d extra deliveries (bound %d), at most %d times each; receiver got %d requests, %d samples",
		tl.written, len(scrapes), killSeries, tl.duplicated, tl.extra, bound, tl.maxTimes, reqs, got)
}

// The endpoint answers 503 for a few seconds; during the outage the
// sidecar is SIGKILLed and restarted while the TSDB keeps being written.
// Upstream's watcher would restart at "now" and lose everything written
// before the kill that the endpoint had not taken; walship resends it from
// its saved position: when the endpoint is back, every sample arrives, at
// most twice.
func TestSidecarKilledDuringOutage(t *testing.T) {
	const outageFor = 3 * time.Second
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))

	w := startScrapeWriter(t, "outage_test", killSeries, killInterval)
	recv, out := newOutageReceiver(t)
	work := t.TempDir()
	args := []string{"sidecar", "--config.file", sidecarConfig(t, work, recv.URL), "--wal.dir", w.walDir,
		"--storage.agent.path", filepath.Join(work, "agent"), "--storage.remote.flush-deadline", "5s"}
	p := start(t, work, true, args...)
	require.Eventually(t, func() bool { return w.tally(recv, w.count()).newest > 0 }, 20*time.Second, 10*time.Millisecond,
		"the sidecar ships nothing")

	// The outage; the sidecar runs into it.
	out.down.Store(true)
	outageStart := time.Now()
	atOutage := w.count()
	require.Eventually(t, func() bool { return out.refused.Load() > 0 }, 10*time.Second, 10*time.Millisecond)

	// A random moment in the first half of the outage: the kill.
	<-time.After(time.Duration(rng.Int63n(int64(outageFor / 2))))
	kill(t, p)
	atKill := w.count()
	refusedBefore := out.refused.Load()
	p = start(t, work, true, args...)
	// The new run runs into the outage too.
	require.Eventually(t, func() bool { return out.refused.Load() > refusedBefore }, 10*time.Second, 10*time.Millisecond)
	<-time.After(time.Until(outageStart.Add(outageFor)))
	out.down.Store(false)
	atRecovery := w.count()
	t.Logf("outage of %v: scrapes %d to %d written before the kill, up to %d during it, %d requests refused",
		time.Since(outageStart).Round(time.Millisecond), atOutage+1, atKill, atRecovery, out.refused.Load())
	require.Greater(t, atKill, atOutage, "scrapes were written during the outage before the kill")

	// Writing goes on after the outage, then stops.
	require.Eventually(t, func() bool { return w.tally(recv, w.count()).newest > atRecovery }, 20*time.Second, 20*time.Millisecond,
		"nothing written after the outage arrives")
	w.stop()
	scrapes := w.count()
	assert.Eventually(t, func() bool { return w.tally(recv, scrapes).missing == 0 }, 30*time.Second, 50*time.Millisecond)
	tl := w.tally(recv, scrapes)
	require.Zero(t, tl.missing, "samples lost: %d of %d, first %s", tl.missing, tl.written, tl.firstMiss)
	p.signal(syscall.SIGTERM)
	require.Equal(t, 0, p.wait(20*time.Second))
	require.Zero(t, tl.wrongValue, "samples arrived with another value")
	require.LessOrEqual(t, tl.maxTimes, 2, "a sample arrives at most once per run")
	reqs, got := recv.Accepted().Requests, recv.Accepted().Samples
	t.Logf("%d samples written (%d scrapes of %d series), all delivered; %d delivered twice; receiver got %d requests, %d samples",
		tl.written, scrapes, killSeries, tl.duplicated, reqs, got)
}
