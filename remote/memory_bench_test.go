package remote_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	upremote "github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/chunks"
	uprecord "github.com/prometheus/prometheus/tsdb/record"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// memSeriesEnv sets the number of series BenchmarkMemoryPerSeries stores
// (default 100,000), e.g. WALSHIP_MEMBENCH_SERIES=1000000.
const memSeriesEnv = "WALSHIP_MEMBENCH_SERIES"

func memSeriesCount(b *testing.B) int {
	s := os.Getenv(memSeriesEnv)
	if s == "" {
		return 100_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", memSeriesEnv, s)
	}
	return n
}

var memMetricNames = []string{
	"kube_pod_container_status_restarts_total", "kube_pod_status_phase", "kube_pod_container_resource_requests",
	"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "node_cpu_seconds_total",
	"node_network_receive_bytes_total", "node_filesystem_avail_bytes", "http_requests_total", "up",
}

// memLabels returns the labels of series i: 10 labels of about 130 bytes
// (names and values), shaped like kube-state-metrics / cAdvisor series: a
// few hundred metric names, one pod per 20 series, a node per 500.
func memLabels(b *labels.ScratchBuilder, i int) labels.Labels {
	b.Reset()
	pod := i / 20
	b.Add("__name__", fmt.Sprintf("%s_%d", memMetricNames[i%len(memMetricNames)], i%37))
	b.Add("container", "app-"+strconv.Itoa(pod%7))
	b.Add("instance", fmt.Sprintf("10.%d.%d.%d:8080", pod/65536%256, pod/256%256, pod%256))
	b.Add("job", "kubelet")
	b.Add("namespace", "team-"+strconv.Itoa(pod%50))
	b.Add("node", "node-"+strconv.Itoa(i/500))
	b.Add("pod", fmt.Sprintf("web-%05d", pod))
	b.Add("le", strconv.Itoa(i%20))
	b.Add("uid", strconv.Itoa(i))
	b.Sort()
	return b.Labels()
}

// memChunk is how many series (and samples) go into one call or record, as
// the watcher hands over a decoded record.
const memChunk = 1000

// memChunkOf fills series and samples for refs [from, from+len) with fresh
// labels, as decoding a series record makes them.
func memChunkOf(sb *labels.ScratchBuilder, series []record.RefSeries, samples []record.RefSample, from int, ts int64) {
	for j := range series {
		i := from + j
		series[j] = record.RefSeries{Ref: record.Ref(i + 1), Labels: memLabels(sb, i)}
		samples[j] = record.RefSample{Ref: record.Ref(i + 1), T: ts, V: float64(i)}
	}
}

// heap returns the live heap (HeapAlloc) and the heap in use (HeapInuse)
// after two collections.
func heap() (alloc, inuse uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.HeapInuse
}

// memReceiver is the counting endpoint of the benchmarks (countingHandler:
// RW1 and RW2, one sample per time series, written-count headers for RW2).
type memReceiver struct {
	url     string
	counter *sampleCounter
}

func newMemReceiver(b *testing.B) *memReceiver {
	c := &sampleCounter{}
	srv := httptest.NewServer(countingHandler(c))
	b.Cleanup(srv.Close)
	return &memReceiver{url: srv.URL, counter: c}
}

func (r *memReceiver) wait(b *testing.B, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := r.counter.wait(ctx, int64(n)); err != nil {
		b.Fatal(err)
	}
}

func memRemoteConfig(b *testing.B, rawURL string, proto queue.Protocol) config.RemoteWriteConfig {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.Fatal(err)
	}
	rw := config.DefaultRemoteWriteConfig
	rw.URL = &commoncfg.URL{URL: u}
	rw.MetadataConfig.Send = false
	rw.QueueConfig.BatchSendDeadline = model.Duration(50 * time.Millisecond)
	if proto == queue.RW2 {
		rw.ProtobufMessage = remoteapi.WriteV2MessageType
	} else {
		rw.ProtobufMessage = remoteapi.WriteV1MessageType
	}
	return rw
}

// memSide is one implementation under measurement: start builds it (not
// measured), feed hands it the n series and their samples, stop ends it.
type memSide struct {
	// whole: the baseline is taken before start, so construction is
	// measured too (a watcher may read the log as soon as it starts).
	whole bool
	start func(b *testing.B)
	feed  func(b *testing.B)
	stop  func()
}

// measure runs side b.N times and reports the live heap it gained per
// series between start and the receiver having every sample.
func measure(b *testing.B, n int, rcv *memReceiver, side memSide) {
	var alloc, inuse float64
	for range b.N {
		rcv.counter.reset()
		var a0, i0 uint64
		if side.whole {
			a0, i0 = heap()
		}
		side.start(b)
		if !side.whole {
			a0, i0 = heap()
		}
		side.feed(b)
		rcv.wait(b, n)
		a1, i1 := heap()
		alloc += float64(int64(a1) - int64(a0))
		inuse += float64(int64(i1) - int64(i0))
		side.stop()
	}
	b.ReportMetric(alloc/float64(b.N)/float64(n), "B/series")
	b.ReportMetric(inuse/float64(b.N)/float64(n), "inuse-B/series")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMemoryPerSeries measures the live heap a queue keeps per
// series: N series (default 100,000; WALSHIP_MEMBENCH_SERIES sets it) of
// 10 labels each are stored, one sample per series is queued and sent,
// and the heap after everything reached the receiver is compared with the
// heap before the first series was stored (runtime.GC, then
// runtime.MemStats.HeapAlloc; inuse-B/series is HeapInuse, which also
// counts free room in the heap's spans).
//
// mode=queue hands the series and samples to the queue directly, in calls
// of 1000 as the watcher does: walship's queue.Manager, and upstream's
// QueueManager (taken out of a WriteStorage) through StoreSeries and
// Append. mode=pipeline writes a WAL with the N series and a sample each
// and ships it with each side's watcher and queue (walship: watcher +
// queue.Manager + Client; upstream: WriteStorage). Both send to the same
// in-process endpoint; labels are made fresh for each call, as decoding a
// record makes them, so the label strings a queue keeps are counted.
func BenchmarkMemoryPerSeries(b *testing.B) {
	n := memSeriesCount(b)
	n = (n + memChunk - 1) / memChunk * memChunk
	rcv := newMemReceiver(b)
	ts := time.Now().Add(24 * time.Hour).UnixMilli()

	var labelBytes int
	{
		var sb labels.ScratchBuilder
		for i := range 1000 {
			memLabels(&sb, i).Range(func(l labels.Label) { labelBytes += len(l.Name) + len(l.Value) })
		}
	}

	// feedWalship stores the series into q and queues their samples.
	feedWalship := func(b *testing.B, q *queue.Manager) {
		var sb labels.ScratchBuilder
		for from := 0; from < n; from += memChunk {
			series, samples := make([]record.RefSeries, memChunk), make([]record.RefSample, memChunk)
			memChunkOf(&sb, series, samples, from, ts)
			q.StoreSeries(series, 0)
			at := record.Span{Start: record.Position{Offset: int64(from)}, End: record.Position{Offset: int64(from) + 1}}
			for len(samples) > 0 {
				k := q.AppendSamples(samples, at)
				samples = samples[k:]
				if k == 0 {
					select {
					case <-q.Ready():
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		}
	}

	walshipSide := func(proto queue.Protocol, pipeline string) memSide {
		var (
			client *remote.Client
			q      *queue.Manager
			cancel context.CancelFunc
			done   chan struct{}
			ctx    context.Context
			wt     *watcher.Watcher
		)
		metrics, wmetrics := queue.NewMetrics(nil), watcher.NewMetrics(nil)
		return memSide{
			whole: pipeline != "",
			start: func(b *testing.B) {
				rw := memRemoteConfig(b, rcv.url, proto)
				var err error
				client, err = remote.NewClient("mem", &rw, remote.ClientOptions{})
				if err != nil {
					b.Fatal(err)
				}
				q, err = queue.New(queue.Options{Name: "mem", URL: rcv.url, Config: rw.QueueConfig, Protocol: proto, Sender: client, Metrics: metrics})
				if err != nil {
					b.Fatal(err)
				}
				if pipeline != "" {
					wt, err = watcher.New(q, watcher.Options{Dir: pipeline, Name: "mem", Start: watcher.FromBeginning, Metrics: wmetrics})
					if err != nil {
						b.Fatal(err)
					}
				}
				ctx, cancel = context.WithCancel(context.Background())
				done = make(chan struct{}, 2)
				go func() { q.Run(ctx); done <- struct{}{} }()
			},
			feed: func(b *testing.B) {
				if pipeline != "" {
					go func() { wt.Run(ctx); done <- struct{}{} }()
					return
				}
				done <- struct{}{}
				feedWalship(b, q)
			},
			stop: func() {
				cancel()
				<-done
				<-done
				client.Close()
				q, wt = nil, nil
			},
		}
	}

	upstreamSide := func(proto queue.Protocol, dir string, pipeline bool) memSide {
		var (
			rws  *upremote.WriteStorage
			qm   *upremote.QueueManager
			stop chan struct{}
			tick chan struct{}
		)
		return memSide{
			whole: pipeline,
			start: func(b *testing.B) {
				rws = upremote.NewWriteStorage(nil, nil, dir, time.Minute, nil, false)
				rw := memRemoteConfig(b, rcv.url, proto)
				conf := &config.Config{GlobalConfig: config.DefaultGlobalConfig, RemoteWriteConfigs: []*config.RemoteWriteConfig{&rw}}
				if err := rws.ApplyConfig(conf); err != nil {
					b.Fatal(err)
				}
				qm = upstreamQueue(b, rws)
				stop, tick = make(chan struct{}), make(chan struct{})
				if pipeline {
					// Upstream's watcher reads when notified (or every 15 s):
					// notify it as a busy writer would, once feeding starts.
					go func() {
						defer close(tick)
						select {
						case <-tick:
						case <-stop:
							return
						}
						t := time.NewTicker(time.Millisecond)
						defer t.Stop()
						for {
							select {
							case <-stop:
								return
							case <-t.C:
								rws.Notify()
							}
						}
					}()
				} else {
					close(tick)
				}
			},
			feed: func(b *testing.B) {
				if pipeline {
					tick <- struct{}{}
					return
				}
				var sb labels.ScratchBuilder
				useries, usamples := make([]uprecord.RefSeries, memChunk), make([]uprecord.RefSample, memChunk)
				series, samples := make([]record.RefSeries, memChunk), make([]record.RefSample, memChunk)
				for from := 0; from < n; from += memChunk {
					memChunkOf(&sb, series, samples, from, ts)
					for j := range series {
						useries[j] = uprecord.RefSeries{Ref: chunks.HeadSeriesRef(series[j].Ref), Labels: series[j].Labels}
						usamples[j] = uprecord.RefSample{Ref: chunks.HeadSeriesRef(samples[j].Ref), T: samples[j].T, V: samples[j].V}
					}
					qm.StoreSeries(useries, 0)
					qm.Append(usamples)
				}
				clear(useries)
				clear(series)
			},
			stop: func() {
				close(stop)
				<-tick
				rws.Close()
				rws, qm = nil, nil
			},
		}
	}

	for _, proto := range []queue.Protocol{queue.RW1, queue.RW2} {
		pname := map[queue.Protocol]string{queue.RW1: "rw1", queue.RW2: "rw2"}[proto]
		b.Run("mode=queue/proto="+pname, func(b *testing.B) {
			b.Run("impl=walship", func(b *testing.B) {
				b.ReportMetric(float64(labelBytes)/1000, "label-B/series")
				measure(b, n, rcv, walshipSide(proto, ""))
			})
			b.Run("impl=upstream", func(b *testing.B) {
				dir := b.TempDir()
				if err := os.Mkdir(filepath.Join(dir, "wal"), 0o755); err != nil {
					b.Fatal(err)
				}
				measure(b, n, rcv, upstreamSide(proto, dir, false))
			})
		})
	}

	// The WAL for mode=pipeline: records of 1000 series, each followed by
	// a record of their samples, timestamps in the future (upstream's
	// watcher skips samples older than its start).
	parent := b.TempDir()
	dir := filepath.Join(parent, "wal")
	w, err := wal.Open(dir, wal.Options{Compression: wal.Snappy})
	if err != nil {
		b.Fatal(err)
	}
	{
		var enc record.Encoder
		var sb labels.ScratchBuilder
		series, samples := make([]record.RefSeries, memChunk), make([]record.RefSample, memChunk)
		for from := 0; from < n; from += memChunk {
			memChunkOf(&sb, series, samples, from, ts)
			if err := w.Log(enc.Series(nil, series)); err != nil {
				b.Fatal(err)
			}
			if err := w.Log(enc.Samples(nil, samples)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	for _, proto := range []queue.Protocol{queue.RW1, queue.RW2} {
		pname := map[queue.Protocol]string{queue.RW1: "rw1", queue.RW2: "rw2"}[proto]
		b.Run("mode=pipeline/proto="+pname, func(b *testing.B) {
			b.Run("impl=walship", func(b *testing.B) {
				measure(b, n, rcv, walshipSide(proto, dir))
			})
			b.Run("impl=upstream", func(b *testing.B) {
				measure(b, n, rcv, upstreamSide(proto, parent, true))
			})
		})
	}
}

// upstreamQueue returns the one QueueManager of rws. WriteStorage keeps its
// queues unexported; the benchmark reads the map through reflect, since
// NewQueueManager takes unexported types.
func upstreamQueue(b *testing.B, rws *upremote.WriteStorage) *upremote.QueueManager {
	f := reflect.ValueOf(rws).Elem().FieldByName("queues")
	queues := *(*map[string]*upremote.QueueManager)(unsafe.Pointer(f.UnsafeAddr()))
	if len(queues) != 1 {
		b.Fatalf("upstream WriteStorage has %d queues, want 1", len(queues))
	}
	for _, q := range queues {
		return q
	}
	return nil
}
