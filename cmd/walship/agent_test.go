package main_test

import (
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// target is a scrape target whose counter says which scrape it is: the
// n-th scrape answers n. It remembers when it served each value.
type target struct {
	*httptest.Server
	mu     sync.Mutex
	served []time.Time // served[n-1]: when value n was served
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		tg.mu.Lock()
		tg.served = append(tg.served, time.Now())
		n := len(tg.served)
		tg.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE walship_test_scrape_total counter\nwalship_test_scrape_total %d\n", n)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) servedAt() []time.Time {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]time.Time(nil), tg.served...)
}

func (tg *target) host() string {
	u, _ := url.Parse(tg.URL)
	return u.Host
}

// agentConfig scrapes tg every 100ms and ships to the given endpoints.
func agentConfig(tg *target, endpoints ...string) string {
	return fmt.Sprintf(`global:
  scrape_interval: 100ms
  scrape_timeout: 100ms
scrape_configs:
  - job_name: target
    static_configs: [{targets: [%q]}]
remote_write:
%s`, tg.host(), strings.Join(endpoints, ""))
}

// scrapeValues returns how often each scrape number arrived (staleness
// markers left out).
func scrapeValues(r *testkit.Receiver) map[int]int {
	out := map[int]int{}
	for v, n := range values(r, "walship_test_scrape_total") {
		if !math.IsNaN(v) {
			out[int(v)] += n
		}
	}
	return out
}

// The agent is SIGKILLed at random moments and restarted: every scrape the
// target served reaches the receiver at least once, except the ones served
// in the last killWindow before a kill (they may not have been committed to
// the WAL yet: they were scraped, not stored). Duplicates: a sample is
// delivered at most once per run of the agent (a restart resends from the
// last saved position), so at most kills+1 times.
func TestAgentSurvivesSIGKILL(t *testing.T) {
	const (
		kills      = 5
		killWindow = 500 * time.Millisecond
	)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))

	tg := newTarget(t)
	recv := testkit.NewReceiver(t)
	work := t.TempDir()
	cfg := writeFile(t, filepath.Join(work, "walship.yml"), agentConfig(tg, remoteWrite("receiver", recv.URL)))
	args := []string{"--config.file", cfg, "--storage.remote.flush-deadline", "5s"}

	var killedAt []time.Time
	for k := 0; k <= kills; k++ {
		servedBefore := len(tg.servedAt())
		p := start(t, work, true, args...)
		// Shipping works again in this run: a value scraped now arrived.
		require.Eventually(t, func() bool {
			for v := range scrapeValues(recv) {
				if v > servedBefore {
					return true
				}
			}
			return false
		}, 20*time.Second, 10*time.Millisecond, "run %d ships nothing", k)
		if k == kills {
			// Last run: wait until every scrape that must arrive did.
			var missing []int
			if !assert.Eventually(t, func() bool {
				missing = missingScrapes(tg.servedAt(), killedAt, killWindow, scrapeValues(recv))
				return len(missing) == 0
			}, 30*time.Second, 20*time.Millisecond) {
				served := tg.servedAt()
				for _, n := range missing {
					t.Logf("scrape %d, served at %s, never delivered", n, served[n-1].Format("15:04:05.000"))
				}
				for i, k := range killedAt {
					t.Logf("kill %d at %s", i+1, k.Format("15:04:05.000"))
				}
			}
			p.signal(syscall.SIGTERM)
			require.Equal(t, 0, p.wait(20*time.Second))
			// A missing scrape is a loss when the WAL holds it. One the
			// WAL does not hold was never stored: its scrape failed (the
			// 100 ms scrape_timeout passed on a loaded machine after the
			// target answered; up is 0 then), which the failed scrapes
			// delivered must account for.
			stored := walScrapeValues(t, filepath.Join(work, "data-agent", "wal"))
			var lost []int
			for _, n := range missing {
				if stored[n] {
					lost = append(lost, n)
				}
			}
			require.Empty(t, lost, "scrapes written to the WAL and never delivered")
			failed := values(recv, "up")[0]
			require.LessOrEqual(t, len(missing), failed, "scrapes neither stored nor failed: %v", missing)
			if len(missing) > 0 {
				t.Logf("scrapes %v were served but never stored (%d failed scrapes delivered)", missing, failed)
			}
			break
		}
		// A random moment: up to a second more of scraping and shipping.
		<-time.After(time.Duration(rng.Int63n(int64(time.Second))))
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
		require.Equal(t, -int(syscall.SIGKILL), p.wait(10*time.Second))
		// When it was dead, not when it was signalled: the target may
		// serve a scrape to the process in between (CI saw one served in
		// the same millisecond as the signal, after it was sent).
		killedAt = append(killedAt, time.Now())
	}

	got := scrapeValues(recv)
	served := tg.servedAt()
	require.Greater(t, len(served), 10)
	dups := 0
	for v, n := range got {
		require.LessOrEqual(t, n, kills+1, "scrape %d delivered %d times", v, n)
		if n > 1 {
			dups++
		}
	}
	t.Logf("%d scrapes served, %d delivered, %d delivered more than once", len(served), len(got), dups)
}

// walScrapeValues returns the values of walship_test_scrape_total the
// agent's WAL in dir holds (a torn or damaged rest of a segment is
// skipped).
func walScrapeValues(t *testing.T, dir string) map[int]bool {
	t.Helper()
	segs, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	var dec record.Decoder
	refs := map[record.Ref]bool{}
	out := map[int]bool{}
	for _, ref := range segs {
		r := wal.NewReader(wal.OS, dir, []wal.SegmentRef{ref}, 0)
		for r.Next() {
			rec := r.Record()
			switch dec.TypeOf(rec) {
			case record.Series:
				series, err := dec.Series(rec, nil)
				require.NoError(t, err)
				for _, s := range series {
					if s.Labels.Get("__name__") == "walship_test_scrape_total" {
						refs[s.Ref] = true
					}
				}
			case record.Samples, record.SamplesV2:
				samples, err := dec.Samples(rec, nil)
				require.NoError(t, err)
				for _, s := range samples {
					if refs[s.Ref] && !math.IsNaN(s.V) {
						out[int(s.V)] = true
					}
				}
			}
		}
		r.Close()
	}
	return out
}

// missingScrapes lists the scrape numbers served that did not arrive and
// are not excused by a kill right after they were served.
func missingScrapes(served, kills []time.Time, window time.Duration, got map[int]int) []int {
	var missing []int
	for i, at := range served {
		excused := false
		for _, k := range kills {
			if !at.Before(k.Add(-window)) && !at.After(k) {
				excused = true
			}
		}
		if !excused && got[i+1] == 0 {
			missing = append(missing, i+1)
		}
	}
	return missing
}

// SIGTERM stops scraping, flushes what was scraped and exits 0.
func TestAgentSIGTERMFlushes(t *testing.T) {
	tg := newTarget(t)
	recv := testkit.NewReceiver(t)
	work := t.TempDir()
	cfg := writeFile(t, filepath.Join(work, "walship.yml"), agentConfig(tg, remoteWrite("receiver", recv.URL)))
	p := start(t, work, true, "--config.file", cfg, "--storage.remote.flush-deadline", "10s")
	require.Eventually(t, func() bool { return len(scrapeValues(recv)) >= 5 }, 20*time.Second, 10*time.Millisecond)
	code, body := p.get("/-/healthy")
	require.Equal(t, http.StatusOK, code, body)
	code, body = p.get("/-/ready")
	require.Equal(t, http.StatusOK, code, body)

	p.signal(syscall.SIGTERM)
	require.Equal(t, 0, p.wait(20*time.Second))
	// Everything scraped before the signal was flushed (the last scrape may
	// have been cut off by the stop).
	served := tg.servedAt()
	got := scrapeValues(recv)
	for v := 1; v < len(served); v++ {
		require.Positive(t, got[v], "scrape %d of %d not delivered", v, len(served))
	}
	require.Contains(t, p.stderr.String(), "Flushing remote write queues")
	require.NotContains(t, p.stderr.String(), "flush did not send everything")
	// The data landed in the working directory.
	require.DirExists(t, filepath.Join(work, "data-agent", "wal"))
	require.DirExists(t, filepath.Join(work, "data-agent", "walship-positions"))
}

// A reload that changes one endpoint restarts only the pipeline shipping
// to it: a and b send the same requests, so one pipeline (one watcher,
// named after a) ships to both, and it restarts when b changes; a's
// counters keep counting and a keeps receiving. A bad configuration is
// refused and the running one stays. (TestStorageReloadRestartsOnlyChanged
// shows an entry outside the changed one's group is not restarted.)
func TestAgentReloadKeepsUnchangedEndpoint(t *testing.T) {
	tg := newTarget(t)
	a, b, c := testkit.NewReceiver(t), testkit.NewReceiver(t), testkit.NewReceiver(t)
	work := t.TempDir()
	cfgPath := filepath.Join(work, "walship.yml")
	writeFile(t, cfgPath, agentConfig(tg, remoteWrite("a", a.URL), remoteWrite("b", b.URL)))
	p := start(t, work, true, "--config.file", cfgPath, "--storage.remote.flush-deadline", "5s", "--web.enable-lifecycle")
	require.Eventually(t, func() bool {
		return len(scrapeValues(a)) > 3 && len(scrapeValues(b)) > 3
	}, 20*time.Second, 10*time.Millisecond)
	sentA := `prometheus_remote_storage_samples_total{remote_name="a",url="` + a.URL + `"}`
	require.Eventually(t, func() bool { return p.metric(sentA) > 0 }, 10*time.Second, 10*time.Millisecond)
	watchersA := func() int {
		return strings.Count(p.stderr.String(), `msg="Starting WAL watcher" component=remote remote_name=a `)
	}
	require.Equal(t, 1, watchersA())

	// Endpoint b moves to receiver c; a is unchanged.
	writeFile(t, cfgPath, agentConfig(tg, remoteWrite("a", a.URL), remoteWrite("b", c.URL)))
	before := p.metric(sentA)
	code, body := httpDo(t, http.MethodPost, "http://"+p.addr+"/-/reload")
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool { return len(scrapeValues(c)) > 3 }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return p.metric(sentA) > before+10 }, 20*time.Second, 10*time.Millisecond,
		"endpoint a stopped counting (was %v)", before)
	require.Equal(t, 2, watchersA(), "the pipeline of a and b was not restarted once")

	// GET is refused; a broken file is refused and nothing changes.
	code, _ = httpDo(t, http.MethodGet, "http://"+p.addr+"/-/reload")
	require.Equal(t, http.StatusMethodNotAllowed, code)
	writeFile(t, cfgPath, "remote_write: [not: valid")
	code, body = httpDo(t, http.MethodPost, "http://"+p.addr+"/-/reload")
	require.Equal(t, http.StatusInternalServerError, code, body)
	require.Contains(t, body, "couldn't load configuration")
	nA := len(scrapeValues(a))
	require.Eventually(t, func() bool { return len(scrapeValues(a)) > nA+3 }, 20*time.Second, 10*time.Millisecond)

	// SIGHUP reloads too: b goes back to receiver b.
	writeFile(t, cfgPath, agentConfig(tg, remoteWrite("a", a.URL), remoteWrite("b", b.URL)))
	nB := len(scrapeValues(b))
	p.signal(syscall.SIGHUP)
	require.Eventually(t, func() bool { return len(scrapeValues(b)) > nB+3 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, 3, watchersA(), "the bad configuration restarted something, or the SIGHUP did not")

	p.signal(os.Interrupt)
	require.Equal(t, 0, p.wait(20*time.Second))
}

// The demo needs nothing else: it scrapes itself, ships to its own
// receiver, prints progress lines and stops cleanly on Ctrl-C.
func TestDemo(t *testing.T) {
	work := t.TempDir()
	p := start(t, work, true, "demo")
	ackRE := regexp.MustCompile(`acknowledged [0-9,]+/s \(([1-9][0-9,]*)\)`)
	require.Eventually(t, func() bool { return ackRE.MatchString(p.stderr.String()) }, 20*time.Second, 20*time.Millisecond)
	p.signal(os.Interrupt)
	require.Equal(t, 0, p.wait(20*time.Second))
	require.DirExists(t, filepath.Join(work, "data-demo", "wal"))
}
