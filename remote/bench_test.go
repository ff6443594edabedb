package remote_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
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

// sampleCounter counts the samples a receiver accepted; one waiter at a
// time can block until the count reaches a target.
type sampleCounter struct {
	mu     sync.Mutex
	n      int64
	target int64
	reach  chan struct{} // closed when n reaches target; nil without a waiter
}

func (c *sampleCounter) add(k int64) {
	c.mu.Lock()
	c.n += k
	if c.reach != nil && c.n >= c.target {
		close(c.reach)
		c.reach = nil
	}
	c.mu.Unlock()
}

func (c *sampleCounter) load() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *sampleCounter) reset() {
	c.mu.Lock()
	c.n = 0
	c.mu.Unlock()
}

// wait blocks until at least target samples were counted or ctx ends.
func (c *sampleCounter) wait(ctx context.Context, target int64) error {
	c.mu.Lock()
	if c.n >= target {
		c.mu.Unlock()
		return nil
	}
	reach := make(chan struct{})
	c.reach, c.target = reach, target
	c.mu.Unlock()
	select {
	case <-reach:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d of %d samples received: %w", c.load(), target, ctx.Err())
	}
}

// countingHandler accepts RW1 and RW2 requests and counts their time series (one
// sample each, as both senders build them) with a cheap scan, reusing its
// buffers, so that the receiver's own CPU and garbage are small.
func countingHandler(c *sampleCounter) http.Handler {
	type buffers struct{ body, raw []byte }
	pool := sync.Pool{New: func() any { return &buffers{} }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		count := countTimeSeries(raw)
		c.add(count)
		if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/x-protobuf" {
			// Remote-Write 2.0: say what was written, as the spec asks.
			w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", strconv.FormatInt(count, 10))
			w.Header().Set("X-Prometheus-Remote-Write-Histograms-Written", "0")
			w.Header().Set("X-Prometheus-Remote-Write-Exemplars-Written", "0")
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// receiverMux serves the counting endpoint at / and its controls:
// GET /count (the count), POST /reset (zero it) and GET /wait?n=N (answers
// once N samples were counted).
func receiverMux(c *sampleCounter) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST /{$}", countingHandler(c))
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, c.load()) })
	mux.HandleFunc("POST /reset", func(http.ResponseWriter, *http.Request) { c.reset() })
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := c.wait(r.Context(), n); err != nil {
			http.Error(w, err.Error(), http.StatusGatewayTimeout)
			return
		}
		fmt.Fprint(w, c.load())
	})
	return mux
}

// receiverEnv makes the test binary a receiver process (TestHelperReceiver).
const receiverEnv = "WALSHIP_BENCH_RECEIVER"

// TestHelperReceiver is not a test: run by BenchmarkShipWAL as a separate
// process (the test binary re-executed with receiverEnv set), it serves
// receiverMux on 127.0.0.1, prints its URL on stdout and exits when its
// stdin closes. Without receiverEnv it is skipped.
func TestHelperReceiver(t *testing.T) {
	if os.Getenv(receiverEnv) != "1" {
		t.Skip("a helper process for BenchmarkShipWAL")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: receiverMux(&sampleCounter{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("http://%s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes it (or dies)
	_ = srv.Close()
	<-served
}

// benchReceiver is a counting endpoint the benchmark ships to.
type benchReceiver struct {
	url   string
	reset func() error
	// wait blocks until n samples were counted (since the last reset).
	wait func(ctx context.Context, n int64) error
}

// inProcessReceiver serves the counting endpoint from the benchmark's own
// process: its CPU is counted with the sender's.
func inProcessReceiver(b *testing.B) benchReceiver {
	c := &sampleCounter{}
	srv := httptest.NewServer(countingHandler(c))
	b.Cleanup(srv.Close)
	return benchReceiver{
		url:   srv.URL,
		reset: func() error { c.reset(); return nil },
		wait:  c.wait,
	}
}

// processReceiver starts the counting endpoint in a separate process
// (TestHelperReceiver), so that getrusage(RUSAGE_SELF) measures the
// sender only.
func processReceiver(b *testing.B) benchReceiver {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReceiver$", "-test.count=1")
	cmd.Env = append(os.Environ(), receiverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	b.Cleanup(func() {
		stdin.Close()
		_, _ = io.Copy(io.Discard, out) // the test binary's PASS line
		if err := cmd.Wait(); err != nil {
			b.Errorf("receiver process: %v", err)
		}
	})
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("receiver process did not say its address: %v", err)
	}
	base := strings.TrimSpace(line)
	if !strings.HasPrefix(base, "http://") {
		b.Fatalf("receiver process said %q, not its address", line)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	b.Cleanup(hc.CloseIdleConnections)
	do := func(req *http.Request) error {
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, msg)
		}
		return nil
	}
	return benchReceiver{
		url: base + "/",
		reset: func() error {
			req, _ := http.NewRequest(http.MethodPost, base+"/reset", nil)
			return do(req)
		},
		wait: func(ctx context.Context, n int64) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/wait?n="+strconv.FormatInt(n, 10), nil)
			return do(req)
		},
	}
}

// runPaired runs b.N ops of each implementation, one of each per
// iteration, in alternating order, so that both meet the same machine (this
// one is shared, and its speed drifts within a minute). Each op ships total
// samples and returns the CPU time it took. It reports the samples per
// CPU-second of each and their ratio, walship ÷ upstream, of the totals.
// onlyWalshipEnv, set to anything, makes runPaired run walship alone (to
// profile it, or to compare two versions of it).
const onlyWalshipEnv = "WALSHIP_BENCH_ONLY_WALSHIP"

func runPaired(b *testing.B, total int, walship, upstream func(*testing.B) time.Duration) {
	var ours, theirs time.Duration
	// Each op starts from a collected heap and collects its own garbage
	// before its measurement ends (opCPU), so that each pays for all of
	// its garbage and none of the other's. The pprof labels let a CPU profile of the benchmark
	// be split by implementation (go tool pprof -tagfocus impl=walship);
	// goroutines started inside inherit them.
	runOurs := func() {
		runtime.GC()
		pprof.Do(context.Background(), pprof.Labels("impl", "walship"), func(context.Context) { ours += walship(b) })
	}
	runTheirs := func() {
		runtime.GC()
		pprof.Do(context.Background(), pprof.Labels("impl", "upstream"), func(context.Context) { theirs += upstream(b) })
	}
	if os.Getenv(onlyWalshipEnv) != "" {
		// Profiling or comparing two versions of walship: no upstream.
		for range b.N {
			runOurs()
		}
		b.ReportMetric(float64(total)*float64(b.N)/ours.Seconds(), "walship-samples/cpu-s")
		b.ReportMetric(0, "ns/op")
		return
	}
	for i := range b.N {
		if i%2 == 0 {
			runOurs()
			runTheirs()
		} else {
			runTheirs()
			runOurs()
		}
	}
	rate := func(cpu time.Duration) float64 { return float64(total) * float64(b.N) / cpu.Seconds() }
	b.ReportMetric(rate(ours), "walship-samples/cpu-s")
	b.ReportMetric(rate(theirs), "upstream-samples/cpu-s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}

// opCPU ends an op's measurement: it collects the op's garbage first, so
// that each implementation pays for all the garbage it made (and none of
// the other's: runPaired collects before each op too).
func opCPU(c0 time.Duration) time.Duration {
	runtime.GC()
	return cpuTime() - c0
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
// min_shards = 1 with resharding on. One op ships the whole WAL with each
// implementation, back to back (runPaired); it reports samples per
// CPU-second of the benchmark process for each, and their ratio.
//
// receiver=process runs the endpoint in a separate process (the test
// binary re-executed as TestHelperReceiver), so the CPU measured
// (getrusage RUSAGE_SELF) is the sender's only; receiver=inprocess serves
// it from the benchmark's own process, its CPU included on both sides (the
// figures measured before the receiver moved out). Either way the receiver
// shares the machine's cores with the sender.
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

	// opContext bounds one op, so that a sender that loses samples fails
	// the benchmark instead of hanging it.
	opContext := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 2*time.Minute)
	}
	metrics, wmetrics := queue.NewMetrics(nil), watcher.NewMetrics(nil)

	walship := func(b *testing.B, recv benchReceiver) time.Duration {
		if err := recv.reset(); err != nil {
			b.Fatal(err)
		}
		u, _ := url.Parse(recv.url)
		cfg := config.DefaultRemoteWriteConfig
		cfg.URL = &commoncfg.URL{URL: u}
		client, err := remote.NewClient("bench", &cfg, remote.ClientOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		q, err := queue.New(queue.Options{Name: "bench", URL: recv.url, Config: cfg.QueueConfig, Sender: client, Metrics: metrics})
		if err != nil {
			b.Fatal(err)
		}
		wt, err := watcher.New(q, watcher.Options{Dir: dir, Name: "bench", Start: watcher.FromBeginning, Metrics: wmetrics})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		defer func() { cancel(); <-done; <-done }()
		opCtx, opCancel := opContext()
		defer opCancel()
		c0 := cpuTime()
		go func() { q.Run(ctx); done <- struct{}{} }()
		go func() { wt.Run(ctx); done <- struct{}{} }()
		if err := recv.wait(opCtx, total); err != nil {
			b.Fatal(err)
		}
		return opCPU(c0)
	}

	upstream := func(b *testing.B, recv benchReceiver) time.Duration {
		if err := recv.reset(); err != nil {
			b.Fatal(err)
		}
		u, _ := url.Parse(recv.url)
		rws := upremote.NewWriteStorage(nil, nil, parent, time.Minute, nil, false)
		defer rws.Close()
		rw := config.DefaultRemoteWriteConfig
		rw.URL = &commoncfg.URL{URL: u}
		rw.MetadataConfig.Send = false
		rw.QueueConfig.BatchSendDeadline = model.Duration(5 * time.Second)
		conf := &config.Config{GlobalConfig: config.DefaultGlobalConfig, RemoteWriteConfigs: []*config.RemoteWriteConfig{&rw}}
		opCtx, opCancel := opContext()
		defer opCancel()
		received := make(chan error, 1)
		c0 := cpuTime()
		if err := rws.ApplyConfig(conf); err != nil {
			b.Fatal(err)
		}
		go func() { received <- recv.wait(opCtx, total) }()
		// Upstream's watcher reads when notified (or every 15 s): notify it
		// as a busy writer would.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-received:
				cpu := opCPU(c0)
				if err != nil {
					b.Fatal(err)
				}
				return cpu
			case <-tick.C:
				rws.Notify()
			}
		}
	}

	for _, r := range []struct {
		name  string
		start func(*testing.B) benchReceiver
	}{
		{"receiver=process", processReceiver},
		{"receiver=inprocess", inProcessReceiver},
	} {
		b.Run(r.name, func(b *testing.B) {
			recv := r.start(b)
			runPaired(b, total,
				func(b *testing.B) time.Duration { return walship(b, recv) },
				func(b *testing.B) time.Duration { return upstream(b, recv) })
		})
	}
}

// countTimeSeries counts the top-level time series entries of an RW1 or
// RW2 request (field 1 of prometheus.WriteRequest, field 5 of
// io.prometheus.write.v2.Request) with a cheap scan of the protobuf.
func countTimeSeries(raw []byte) int64 {
	count := int64(0)
	for len(raw) > 0 {
		tag, k := binary.Uvarint(raw)
		raw = raw[k:]
		size, k := binary.Uvarint(raw)
		raw = raw[k+int(size):]
		if tag == 1<<3|2 || tag == 5<<3|2 {
			count++
		}
	}
	return count
}
