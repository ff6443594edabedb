package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

// This file is the load the senders ship: a Prometheus server's TSDB
// written every interval (for sidecars), or scrape targets (for agents).

// load is what a scenario needs of its load: to stop it, after which
// nothing newer than the returned time is written that is accounted, and
// to learn whether writing failed.
type load interface {
	stop() (time.Time, error)
}

// seriesLabels are the labels of series i of n: Kubernetes-like, about
// 200 bytes, 50 metric names.
func seriesLabels(i int) labels.Labels {
	pod := i / 100
	return labels.FromStrings(
		"__name__", fmt.Sprintf("container_reliability_metric_%02d_total", i%50),
		"container", fmt.Sprintf("app-%d", i%2),
		"instance", fmt.Sprintf("10.2.%d.%d:10250", pod/250, pod%250),
		"job", "kubelet",
		"namespace", fmt.Sprintf("team-%d", pod%20),
		"pod", fmt.Sprintf("app-%d-7c9f8d6b5-x%04d", pod%20, pod),
		"series", strconv.Itoa(i),
	)
}

// tsdbLoad is a Prometheus server's TSDB (upstream's, server mode) to
// which every interval one scrape of all its series is committed, with
// the wall clock's time; its WAL is what sidecars ship.
type tsdbLoad struct {
	db     *tsdb.DB
	lbls   []labels.Labels
	cancel context.CancelFunc
	done   chan struct{}
	err    error        // why writing stopped early; read after done
	last   atomic.Int64 // timestamp of the last commit
}

// openTSDB opens a TSDB in dir with WAL segments of segmentSize bytes
// and blocks of block (0: the default, 2h, so the head is never compacted
// during a run); start starts writing.
func openTSDB(dir string, series int, segmentSize int, block time.Duration) (*tsdbLoad, error) {
	opts := tsdb.DefaultOptions()
	opts.WALSegmentSize = segmentSize
	if block > 0 {
		opts.MinBlockDuration, opts.MaxBlockDuration = block.Milliseconds(), block.Milliseconds()
	}
	db, err := tsdb.Open(dir, nil, nil, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("open the TSDB: %w", err)
	}
	l := &tsdbLoad{db: db, done: make(chan struct{})}
	for i := range series {
		l.lbls = append(l.lbls, seriesLabels(i))
	}
	return l, nil
}

// start writes a scrape every interval until stop.
func (l *tsdbLoad) start(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.loop(ctx, interval)
}

func (l *tsdbLoad) loop(ctx context.Context, interval time.Duration) {
	defer close(l.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(3, 4))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t := time.Now().UnixMilli()
		app := l.db.Appender(ctx)
		for _, ls := range l.lbls {
			if _, err := app.Append(0, ls, t, float64(rng.IntN(1000))); err != nil {
				l.err = err
				app.Rollback()
				return
			}
		}
		if err := app.Commit(); err != nil {
			l.err = err
			return
		}
		l.last.Store(t)
	}
}

// stop stops writing and closes the TSDB; every sample written is older
// than the time it returns. A commit that failed is its error: the load
// stopped there.
func (l *tsdbLoad) stop() (time.Time, error) {
	if l.cancel != nil {
		l.cancel()
		<-l.done
	}
	err := errors.Join(l.err, l.db.Close())
	if err != nil {
		err = fmt.Errorf("the TSDB load: %w", err)
	}
	return time.UnixMilli(l.last.Load() + 1), err
}

// targets serves scrape targets of 1000 series each at /metrics/N, their
// values changing every scrape; once stopped, every scrape fails (503).
type targets struct {
	srv     *httptest.Server
	n       int
	stopped atomic.Bool

	mu    sync.Mutex
	count []int // scrapes served, per target
}

// targetSize is how many series a target has.
const targetSize = 1000

// startTargets serves series series in targets of targetSize.
func startTargets(series int) *targets {
	tg := &targets{n: (series + targetSize - 1) / targetSize}
	tg.count = make([]int, tg.n)
	tg.srv = httptest.NewServer(http.HandlerFunc(tg.serve))
	return tg
}

// addr is the targets' host:port.
func (tg *targets) addr() string { return strings.TrimPrefix(tg.srv.URL, "http://") }

func (tg *targets) serve(w http.ResponseWriter, req *http.Request) {
	n, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/metrics/"))
	if err != nil || n < 0 || n >= tg.n {
		http.NotFound(w, req)
		return
	}
	if tg.stopped.Load() {
		http.Error(w, "stopped", http.StatusServiceUnavailable)
		return
	}
	tg.mu.Lock()
	tg.count[n]++
	k := tg.count[n]
	tg.mu.Unlock()
	var b strings.Builder
	for i := n * targetSize; i < (n+1)*targetSize; i++ {
		fmt.Fprintf(&b, "reliability_metric_%02d_total{series=\"%d\",pod=\"app-%d\"} %d\n", i%50, i, i/100, k+i)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write([]byte(b.String()))
}

// stop makes every later scrape fail: samples scraped from then on are
// not accounted (up and the stale markers of the failed scrapes).
func (tg *targets) stop() (time.Time, error) {
	now := time.Now()
	tg.stopped.Store(true)
	return now, nil
}

func (tg *targets) close() { tg.srv.Close() }
