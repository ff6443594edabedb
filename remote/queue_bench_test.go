package remote_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	upremote "github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/chunks"
	uprecord "github.com/prometheus/prometheus/tsdb/record"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal/record"
)

// BenchmarkQueueSend measures the queue, its encoders and the HTTP client
// beside upstream's QueueManager on the same input: 10,000 series
// (node-exporter-like, 5 labels) stored once, then 100 scrapes of one
// sample per series handed over as decoded records (one record per
// scrape, as the watcher hands them), sent to the counting receiver in its
// own process with the default queue_config (min_shards 1, resharding
// on). No WAL is read: this is what the issue's "queue and encoder beside
// upstream's QueueManager" compares. One op sends all 1M samples with each
// implementation, back to back (runPaired); the figures are samples per
// CPU-second of the benchmark process, and their ratio.
//
// walship: queue.Manager + remote.Client, fed through StoreSeries and
// AppendSamples (waiting on Ready when full). upstream: the QueueManager
// of a WriteStorage (its watcher idles on an empty WAL directory), fed
// through StoreSeries and Append (which blocks when full).
func BenchmarkQueueSend(b *testing.B) {
	const nSeries, scrapes = 10_000, 100
	const total = nSeries * scrapes
	series := make([]record.RefSeries, nSeries)
	useries := make([]uprecord.RefSeries, nSeries)
	for i := range series {
		ls := labels.FromStrings(
			"__name__", fmt.Sprintf("node_metric_%d", i%200), "cpu", fmt.Sprint(i%16), "instance", fmt.Sprintf("host-%d:9100", i/200),
			"job", "node", "mode", "idle")
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: ls}
		useries[i] = uprecord.RefSeries{Ref: chunks.HeadSeriesRef(i + 1), Labels: ls}
	}
	base := time.Now().UnixMilli()
	samples := make([][]record.RefSample, scrapes)
	usamples := make([][]uprecord.RefSample, scrapes)
	for sc := range scrapes {
		samples[sc] = make([]record.RefSample, nSeries)
		usamples[sc] = make([]uprecord.RefSample, nSeries)
		for i := range nSeries {
			t, v := base+int64(sc)*15000, float64(sc*i)
			samples[sc][i] = record.RefSample{Ref: record.Ref(i + 1), T: t, V: v}
			usamples[sc][i] = uprecord.RefSample{Ref: chunks.HeadSeriesRef(i + 1), T: t, V: v}
		}
	}

	remoteConfig := func(rawURL string, proto queue.Protocol) config.RemoteWriteConfig {
		u, err := url.Parse(rawURL)
		if err != nil {
			b.Fatal(err)
		}
		rw := config.DefaultRemoteWriteConfig
		rw.URL = &commoncfg.URL{URL: u}
		rw.MetadataConfig.Send = false
		rw.ProtobufMessage = remoteapi.WriteV1MessageType
		if proto == queue.RW2 {
			rw.ProtobufMessage = remoteapi.WriteV2MessageType
		}
		return rw
	}
	opContext := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 2*time.Minute)
	}
	metrics := queue.NewMetrics(nil)

	walship := func(b *testing.B, recv benchReceiver, proto queue.Protocol) time.Duration {
		if err := recv.reset(); err != nil {
			b.Fatal(err)
		}
		cfg := remoteConfig(recv.url, proto)
		client, err := remote.NewClient("bench", &cfg, remote.ClientOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		q, err := queue.New(queue.Options{Name: "bench", URL: recv.url, Config: cfg.QueueConfig, Protocol: proto, Sender: client, Metrics: metrics})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		defer func() { cancel(); <-done }()
		opCtx, opCancel := opContext()
		defer opCancel()
		c0 := cpuTime()
		go func() { q.Run(ctx); close(done) }()
		q.StoreSeries(series, 0)
		for sc, rec := range samples {
			at := record.Span{Start: record.Position{Offset: int64(sc)}, End: record.Position{Offset: int64(sc) + 1}}
			for len(rec) > 0 {
				n := q.AppendSamples(rec, at)
				rec = rec[n:]
				if n == 0 {
					select {
					case <-q.Ready():
					case <-opCtx.Done():
						b.Fatal("queue never had room")
					}
				}
			}
		}
		if err := recv.wait(opCtx, total); err != nil {
			b.Fatal(err)
		}
		return opCPU(c0)
	}

	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "wal"), 0o755); err != nil {
		b.Fatal(err)
	}
	upstream := func(b *testing.B, recv benchReceiver, proto queue.Protocol) time.Duration {
		if err := recv.reset(); err != nil {
			b.Fatal(err)
		}
		rws := upremote.NewWriteStorage(nil, nil, dir, time.Minute, nil, false)
		defer rws.Close()
		rw := remoteConfig(recv.url, proto)
		conf := &config.Config{GlobalConfig: config.DefaultGlobalConfig, RemoteWriteConfigs: []*config.RemoteWriteConfig{&rw}}
		opCtx, opCancel := opContext()
		defer opCancel()
		c0 := cpuTime()
		if err := rws.ApplyConfig(conf); err != nil {
			b.Fatal(err)
		}
		qm := upstreamQueue(b, rws)
		qm.StoreSeries(useries, 0)
		for _, rec := range usamples {
			if !qm.Append(rec) {
				b.Fatal("upstream queue refused samples")
			}
		}
		if err := recv.wait(opCtx, total); err != nil {
			b.Fatal(err)
		}
		return opCPU(c0)
	}

	recv := processReceiver(b)
	for _, proto := range []queue.Protocol{queue.RW1, queue.RW2} {
		pname := map[queue.Protocol]string{queue.RW1: "rw1", queue.RW2: "rw2"}[proto]
		b.Run("proto="+pname, func(b *testing.B) {
			runPaired(b, total,
				func(b *testing.B) time.Duration { return walship(b, recv, proto) },
				func(b *testing.B) time.Duration { return upstream(b, recv, proto) })
		})
	}
}
