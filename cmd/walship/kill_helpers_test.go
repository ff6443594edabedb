package main_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// scrapeWriter writes an upstream TSDB (server mode) the way a Prometheus
// server does: every tick one "scrape" of all its series in one commit.
// Scrape i (from 1) has timestamp i*1000 and, for series s, the value
// i*series+s, so every sample is unique.
type scrapeWriter struct {
	t      *testing.T
	name   string
	db     *tsdb.DB
	walDir string
	lbls   []labels.Labels
	keys   []string // lbls[s].String(), as the receiver keys series

	mu      sync.Mutex
	written []span // written[i-1]: when scrape i was being committed

	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}
}

// span is when a commit began and when it returned.
type span struct{ from, to time.Time }

// startScrapeWriter opens a TSDB with 64 KiB WAL segments (so they rotate
// during a test) and writes a scrape of series series every interval until
// stop.
func startScrapeWriter(t *testing.T, name string, series int, interval time.Duration) *scrapeWriter {
	t.Helper()
	data := t.TempDir()
	opts := tsdb.DefaultOptions()
	opts.WALSegmentSize = 64 * 1024
	db, err := tsdb.Open(data, nil, nil, opts, nil)
	require.NoError(t, err)
	w := &scrapeWriter{
		t:      t,
		name:   name,
		db:     db,
		walDir: filepath.Join(data, "wal"),
		stopc:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	for s := 0; s < series; s++ {
		l := labels.FromStrings("__name__", name, "series", strconv.Itoa(s))
		w.lbls = append(w.lbls, l)
		w.keys = append(w.keys, l.String())
	}
	t.Cleanup(func() {
		w.stop()
		require.NoError(t, db.Close())
	})
	go w.loop(interval)
	return w
}

func (w *scrapeWriter) loop(interval time.Duration) {
	defer close(w.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-w.stopc:
			return
		case <-tick.C:
		}
		if err := w.scrape(); err != nil {
			w.t.Errorf("writing scrape: %v", err)
			return
		}
	}
}

func (w *scrapeWriter) scrape() error {
	w.mu.Lock()
	i := len(w.written) + 1
	w.mu.Unlock()
	from := time.Now()
	app := w.db.Appender(context.Background())
	for s, l := range w.lbls {
		if _, err := app.Append(0, l, int64(i)*1000, w.value(i, s)); err != nil {
			return err
		}
	}
	if err := app.Commit(); err != nil {
		return err
	}
	w.mu.Lock()
	w.written = append(w.written, span{from, time.Now()})
	w.mu.Unlock()
	return nil
}

func (w *scrapeWriter) value(scrape, s int) float64 { return float64(scrape*len(w.lbls) + s) }

// stop stops writing and returns once the last commit has returned.
func (w *scrapeWriter) stop() {
	w.stopOnce.Do(func() { close(w.stopc) })
	<-w.done
}

// scrapes returns when each scrape written so far was committed.
func (w *scrapeWriter) scrapes() []span {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]span(nil), w.written...)
}

func (w *scrapeWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.written)
}

// tally is what a receiver got of a writer's samples.
type tally struct {
	written    int     // samples written
	times      [][]int // times[i-1][s]: how often sample (series s, scrape i) arrived
	missing    int     // samples that never arrived
	firstMiss  string
	wrongValue int // samples that arrived with another value than written
	duplicated int // samples that arrived more than once
	extra      int // deliveries beyond the first, summed
	maxTimes   int
	newest     int // the newest scrape of which a sample arrived
}

// tally compares what r received with the first scrapes scrapes of w.
func (w *scrapeWriter) tally(r *testkit.Receiver, scrapes int) tally {
	seen := seen(r)
	tl := tally{written: scrapes * len(w.lbls), times: make([][]int, scrapes)}
	for i := 1; i <= scrapes; i++ {
		row := make([]int, len(w.lbls))
		for s, key := range w.keys {
			got, ok := seen[key][int64(i)*1000]
			row[s] = got.times
			switch {
			case !ok:
				tl.missing++
				if tl.firstMiss == "" {
					tl.firstMiss = fmt.Sprintf("%s@%d", key, i*1000)
				}
				continue
			case got.value != w.value(i, s):
				tl.wrongValue++
			}
			tl.newest = max(tl.newest, i)
			tl.maxTimes = max(tl.maxTimes, got.times)
			if got.times > 1 {
				tl.duplicated++
				tl.extra += got.times - 1
			}
		}
		tl.times[i-1] = row
	}
	return tl
}

// newOutageReceiver is a receiver that answers 503 while down is set.
func newOutageReceiver(t *testing.T) (*testkit.Receiver, *outage) {
	r := testkit.NewReceiver(t)
	o := &outage{}
	r.Respond(func(*testkit.Request) testkit.Reply {
		if o.down.Load() {
			o.refused.Add(1)
			return testkit.Reply{Status: http.StatusServiceUnavailable}
		}
		return testkit.Reply{}
	})
	return r, o
}

type outage struct {
	down    atomic.Bool
	refused atomic.Int64 // requests answered 503
}

// sidecarConfig is a configuration shipping to url quickly.
func sidecarConfig(t *testing.T, dir, url string) string {
	return writeFile(t, filepath.Join(dir, "walship.yml"), "remote_write:\n"+remoteWrite("receiver", url))
}

// kill SIGKILLs p and waits until it is gone; it returns when it was.
func kill(t *testing.T, p *process) time.Time {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	require.Equal(t, -int(syscall.SIGKILL), p.wait(10*time.Second))
	return time.Now()
}
