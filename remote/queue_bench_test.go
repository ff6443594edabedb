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

// queueSendShape is an input for BenchmarkQueueSend: series stored once,
// then scrapes of one sample per series, handed over as records of
// perRecord samples.
type queueSendShape struct {
	name               string
	series, scrapes    int
	perRecord          int
	labels             func(sb *labels.ScratchBuilder, i int) labels.Labels
	excludeSeriesSetup bool // the clock starts after StoreSeries on both sides
}

// nodeLabels are node-exporter-like series of 5 labels, 200 metric names
// per host.
func nodeLabels(_ *labels.ScratchBuilder, i int) labels.Labels {
	return labels.FromStrings(
		"__name__", fmt.Sprintf("node_metric_%d", i%200), "cpu", fmt.Sprint(i%16), "instance", fmt.Sprintf("host-%d:9100", i/200),
		"job", "node", "mode", "idle")
}

// nodeExporterLabels are series shaped like a whole node-exporter
// scrape: 400 metric names of about 30 characters per host, a third of
// them per CPU (8, with a mode), a third per filesystem (6 devices), a
// third alone; the first 2000 of those series per host (whole requests of
// max_samples_per_send, so an op never waits on batch_send_deadline).
func nodeExporterLabels(_ *labels.ScratchBuilder, i int) labels.Labels {
	host, k := i/2000, i%2000
	m, sub := 0, 0
	for m = 0; m < 400; m++ { // the metric whose series k is
		n := []int{8, 6, 1}[m%3]
		if k < n {
			sub = k
			break
		}
		k -= n
	}
	base := []string{"__name__", fmt.Sprintf("node_subsystem_some_metric_%03d_total", m),
		"instance", fmt.Sprintf("10.1.%d.%d:9100", host/250, host%250), "job", "node-exporter"}
	switch m % 3 {
	case 0:
		base = append(base, "cpu", fmt.Sprint(sub), "mode", []string{"idle", "user", "system", "iowait"}[sub%4])
	case 1:
		base = append(base, "device", fmt.Sprintf("nvme0n%dp%d", sub/3, sub%3), "fstype", "ext4", "mountpoint", fmt.Sprintf("/mnt/data%d", sub))
	}
	return labels.FromStrings(base...)
}

var queueSendShapes = []queueSendShape{
	// The shape measured since session 2: small, label-light, all of it
	// cache-resident; StoreSeries of the 10,000 series is inside the clock.
	{name: "node5x10k", series: 10_000, scrapes: 100, perRecord: 10_000, labels: nodeLabels},
	// A Kubernetes-sized queue, as ../shared/docs/performance.md measured
	// upstream: 100,000 series of 10 labels (memLabels, as the memory
	// benchmark), records of 1000 samples, as a scrape's commit logs them.
	// Storing 100,000 series once per 10 scrapes would weigh series
	// registration ten times more than a real queue does (series live for
	// hours), so both sides' clocks start after StoreSeries here.
	{name: "k8s10x100k", series: 100_000, scrapes: 10, perRecord: 1000, labels: memLabels, excludeSeriesSetup: true},
	// 20 hosts' whole node-exporter scrapes (nodeExporterLabels), one
	// record per host per scrape, series stored outside the clock as for
	// k8s10x100k: the label-light shape at a real scrape's size, whose RW2
	// symbol table is about a fifth of a request.
	{name: "nodeexp20", series: 20 * 2000, scrapes: 25, perRecord: 2000, labels: nodeExporterLabels, excludeSeriesSetup: true},
}

// BenchmarkQueueSend measures the queue, its encoders and the HTTP client
// beside upstream's QueueManager on the same input (queueSendShapes):
// series stored once, then scrapes of one sample per series handed over
// as decoded records, as the watcher hands them, sent to the counting
// receiver in its own process with the default queue_config (min_shards
// 1, resharding on). No WAL is read: this is what the issue's "queue and
// encoder beside upstream's QueueManager" compares. One op sends all 1M
// samples with each implementation, back to back (runPaired); the figures
// are samples per CPU-second of the benchmark process, and their ratio.
//
// walship: queue.Manager + remote.Client, fed through StoreSeries and
// AppendSamples (waiting on Ready when full). upstream: the QueueManager
// of a WriteStorage (its watcher idles on an empty WAL directory), fed
// through StoreSeries and Append (which blocks when full).
func BenchmarkQueueSend(b *testing.B) {
	for _, shape := range queueSendShapes {
		b.Run("shape="+shape.name, func(b *testing.B) { benchmarkQueueSend(b, shape) })
	}
}

func benchmarkQueueSend(b *testing.B, shape queueSendShape) {
	nSeries, scrapes := shape.series, shape.scrapes
	total := nSeries * scrapes
	series := make([]record.RefSeries, nSeries)
	useries := make([]uprecord.RefSeries, nSeries)
	sb := labels.NewScratchBuilder(0)
	for i := range series {
		ls := shape.labels(&sb, i)
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: ls}
		useries[i] = uprecord.RefSeries{Ref: chunks.HeadSeriesRef(i + 1), Labels: ls}
	}
	base := time.Now().UnixMilli()
	var samples [][]record.RefSample
	var usamples [][]uprecord.RefSample
	for sc := range scrapes {
		for from := 0; from < nSeries; from += shape.perRecord {
			n := min(shape.perRecord, nSeries-from)
			rec, urec := make([]record.RefSample, n), make([]uprecord.RefSample, n)
			for k := range n {
				i := from + k
				t, v := base+int64(sc)*15000, float64(sc*i)
				rec[k] = record.RefSample{Ref: record.Ref(i + 1), T: t, V: v}
				urec[k] = uprecord.RefSample{Ref: chunks.HeadSeriesRef(i + 1), T: t, V: v}
			}
			samples, usamples = append(samples, rec), append(usamples, urec)
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
		if shape.excludeSeriesSetup {
			c0 = cpuTime()
		}
		for r, rec := range samples {
			at := record.Span{Start: record.Position{Offset: int64(r)}, End: record.Position{Offset: int64(r) + 1}}
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
		if err := recv.wait(opCtx, int64(total)); err != nil {
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
		if shape.excludeSeriesSetup {
			c0 = cpuTime()
		}
		for _, rec := range usamples {
			if !qm.Append(rec) {
				b.Fatal("upstream queue refused samples")
			}
		}
		if err := recv.wait(opCtx, int64(total)); err != nil {
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
