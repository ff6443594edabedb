package remote_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	upremote "github.com/prometheus/prometheus/storage/remote"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// countingEndpoint accepts RW1 requests and counts their time series
// (one sample each, as both senders build them) with a cheap scan, reusing
// its buffers, so that the receiver's own CPU and garbage are small next to
// the senders'.
func countingEndpoint(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	type buffers struct{ body, raw []byte }
	pool := sync.Pool{New: func() any { return &buffers{} }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bufs := pool.Get().(*buffers)
		defer pool.Put(bufs)
		buf := bytes.NewBuffer(bufs.body[:0])
		buf.ReadFrom(r.Body)
		bufs.body = buf.Bytes()
		body := bufs.body
		size, err := snappy.DecodedLen(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if cap(bufs.raw) < size {
			bufs.raw = make([]byte, size)
		}
		raw, err := snappy.Decode(bufs.raw[:size], body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		count := int64(0)
		for len(raw) > 0 {
			tag, k := binary.Uvarint(raw)
			raw = raw[k:]
			size, k := binary.Uvarint(raw)
			raw = raw[k+int(size):]
			if tag == 1<<3|2 {
				count++
			}
		}
		n.Add(count)
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkShipWAL ships the same WAL (10,000 series × 100 scrapes, 1M
// samples, snappy, one segment, timestamps in the future) to the same
// counting endpoint with walship's watcher + queue + client and with
// upstream's WriteStorage (its watcher, QueueManager and client), RW1, from
// min_shards = 1 with resharding on. One op ships the whole WAL. It reports
// samples per CPU-second of the whole process (the small receiver included,
// on both sides) and per wall-clock second.
func BenchmarkShipWAL(b *testing.B) {
	parent := b.TempDir()
	dir := filepath.Join(parent, "wal")
	const nSeries, scrapes = 10_000, 100
	w, err := wal.Open(dir, wal.Options{Compression: wal.Snappy})
	if err != nil {
		b.Fatal(err)
	}
	var enc record.Encoder
	series := make([]record.RefSeries, nSeries)
	for i := range series {
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings(
			"__name__", fmt.Sprintf("node_metric_%d", i%200), "cpu", fmt.Sprint(i%16), "instance", fmt.Sprintf("host-%d:9100", i/200),
			"job", "node", "mode", "idle")}
	}
	if err := w.Log(enc.Series(nil, series)); err != nil {
		b.Fatal(err)
	}
	base := time.Now().Add(24 * time.Hour).UnixMilli()
	samples := make([]record.RefSample, nSeries)
	for sc := 0; sc < scrapes; sc++ {
		for i := range samples {
			samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: base + int64(sc)*15000, V: float64(sc * i)}
		}
		if err := w.Log(enc.Samples(nil, samples)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	const total = nSeries * scrapes

	report := func(b *testing.B, cpu, wall time.Duration) {
		b.ReportMetric(float64(total)*float64(b.N)/cpu.Seconds(), "samples/cpu-s")
		b.ReportMetric(float64(total)*float64(b.N)/wall.Seconds(), "samples/s")
		b.ReportMetric(0, "ns/op")
	}

	b.Run("impl=walship", func(b *testing.B) {
		srv, count := countingEndpoint(b)
		u, _ := url.Parse(srv.URL)
		cfg := config.DefaultRemoteWriteConfig
		cfg.URL = &commoncfg.URL{URL: u}
		metrics, wmetrics := queue.NewMetrics(nil), watcher.NewMetrics(nil)
		var cpu, wall time.Duration
		for i := 0; i < b.N; i++ {
			count.Store(0)
			client, err := remote.NewClient("bench", &cfg, remote.ClientOptions{})
			if err != nil {
				b.Fatal(err)
			}
			q, err := queue.New(queue.Options{Name: "bench", URL: srv.URL, Config: cfg.QueueConfig, Sender: client, Metrics: metrics})
			if err != nil {
				b.Fatal(err)
			}
			wt, err := watcher.New(q, watcher.Options{Dir: dir, Name: "bench", Start: watcher.FromBeginning, Metrics: wmetrics})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{}, 2)
			c0, t0 := cpuTime(), time.Now()
			go func() { q.Run(ctx); done <- struct{}{} }()
			go func() { wt.Run(ctx); done <- struct{}{} }()
			for count.Load() < total {
				time.Sleep(time.Millisecond) // polling the counter, not synchronisation of the code under test
			}
			cpu += cpuTime() - c0
			wall += time.Since(t0)
			cancel()
			<-done
			<-done
			client.Close()
		}
		report(b, cpu, wall)
	})

	b.Run("impl=upstream", func(b *testing.B) {
		srv, count := countingEndpoint(b)
		u, _ := url.Parse(srv.URL)
		var cpu, wall time.Duration
		for i := 0; i < b.N; i++ {
			count.Store(0)
			rws := upremote.NewWriteStorage(nil, nil, parent, time.Minute, nil, false)
			rw := config.DefaultRemoteWriteConfig
			rw.URL = &commoncfg.URL{URL: u}
			rw.MetadataConfig.Send = false
			rw.QueueConfig.BatchSendDeadline = model.Duration(5 * time.Second)
			conf := &config.Config{GlobalConfig: config.DefaultGlobalConfig, RemoteWriteConfigs: []*config.RemoteWriteConfig{&rw}}
			c0, t0 := cpuTime(), time.Now()
			if err := rws.ApplyConfig(conf); err != nil {
				b.Fatal(err)
			}
			// Upstream's watcher reads when notified (or every 15 s):
			// notify it as a busy writer would.
			for count.Load() < total {
				rws.Notify()
				time.Sleep(time.Millisecond)
			}
			cpu += cpuTime() - c0
			wall += time.Since(t0)
			rws.Close()
		}
		report(b, cpu, wall)
	})
}
