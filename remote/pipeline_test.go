package remote_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// pipeline is a watcher feeding a queue that sends through a Client.
type pipeline struct {
	stop func()
	w    *watcher.Watcher
}

func startPipeline(t *testing.T, walDir, posFile, endpoint string) *pipeline {
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	cfg := config.DefaultRemoteWriteConfig
	cfg.URL = &commoncfg.URL{URL: u}
	client, err := remote.NewClient("e2e", &cfg, remote.ClientOptions{})
	require.NoError(t, err)
	qc := config.DefaultQueueConfig
	qc.BatchSendDeadline = model.Duration(20 * time.Millisecond)
	qc.MinBackoff, qc.MaxBackoff = model.Duration(time.Millisecond), model.Duration(50*time.Millisecond)
	q, err := queue.New(queue.Options{Name: "e2e", URL: endpoint, Config: qc, Sender: client})
	require.NoError(t, err)
	w, err := watcher.New(q, watcher.Options{Dir: walDir, Name: "e2e", Positions: watcher.NewFilePositions(nil, posFile), SaveInterval: 10 * time.Millisecond})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); require.NoError(t, q.Run(ctx)) }()
	go func() { defer wg.Done(); require.NoError(t, w.Run(ctx)) }()
	var once sync.Once
	p := &pipeline{w: w, stop: func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			client.Close()
		})
	}}
	t.Cleanup(p.stop)
	return p
}

// TestPipelineSurvivesOutageAndRestart: the whole pipe — WAL, watcher,
// queue, HTTP client, a receiver on 127.0.0.1. The WAL is written while the
// endpoint is down and the pipeline is restarted in the middle of the
// outage (upstream loses that data: its watcher restarts at "now"); once
// the endpoint is back, every sample written arrives.
func TestPipelineSurvivesOutageAndRestart(t *testing.T) {
	walDir := t.TempDir()
	posFile := filepath.Join(t.TempDir(), "e2e.json")
	r := testkit.NewReceiver(t)

	w, err := wal.Open(walDir, wal.Options{SegmentSize: 4 * wal.PageSize, Compression: wal.Snappy})
	require.NoError(t, err)
	var enc record.Encoder
	const nSeries = 50
	series := make([]record.RefSeries, nSeries)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "up", "i", fmt.Sprint(i))}
	}
	require.NoError(t, w.Log(enc.Series(nil, series)))
	scrape := func(from, to int) {
		for sc := from; sc < to; sc++ {
			samples := make([]record.RefSample, nSeries)
			for i := range samples {
				samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: int64(sc) * 15000, V: float64(sc)}
			}
			require.NoError(t, w.Log(enc.Samples(nil, samples)))
		}
	}

	p := startPipeline(t, walDir, posFile, r.URL)
	scrape(0, 100)
	p.w.Notify()
	require.Eventually(t, func() bool { return r.Distinct() == nSeries*100 }, 20*time.Second, time.Millisecond, "before the outage")

	r.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	scrape(100, 200)
	p.w.Notify()
	p.stop() // restart in the middle of the outage
	p = startPipeline(t, walDir, posFile, r.URL)
	scrape(200, 300)
	p.w.Notify()
	r.Respond(nil)
	require.Eventually(t, func() bool { return r.Distinct() == nSeries*300 }, 20*time.Second, time.Millisecond, "everything after the outage")
	p.stop()
	require.NoError(t, w.Close())
	// Delivery is at least once: a request the endpoint had accepted but
	// whose answer the stopped queue never read is sent again. That is at
	// most one request per shard (here one shard, max_samples_per_send
	// samples); nothing else arrives twice.
	dups := 0
	for _, n := range r.Seen() {
		dups += n - 1
	}
	require.LessOrEqual(t, dups, config.DefaultQueueConfig.MaxSamplesPerSend, "duplicates beyond what was in flight")
}
