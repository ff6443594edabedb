// Package receivers runs real remote-write receivers (Prometheus with its
// remote-write receiver, VictoriaMetrics single-node, Thanos Receive),
// built from the Go module proxy at pinned versions, ships a WAL to each
// with the walship binary, and reads every sample back through the
// receiver's own API to compare it with what was written (make
// e2e-receivers).
package receivers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// Sample is one sample read back: a float, or a native histogram (H; J
// when read through a PromQL API, as its JSON decoded).
type Sample struct {
	T int64
	V float64
	H *histogram.Histogram
	J any
}

// Series is what a receiver holds of one series.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// Receiver is one kind of receiver: how to build it, run it and read
// from it.
type Receiver struct {
	Name, Version string
	// OptIn, when set, keeps the receiver out of runs that do not name
	// it, and says why (reported as skipped).
	OptIn string
	// Exact says whether values come back as they were sent;
	// VictoriaMetrics keeps about 12 significant decimal digits.
	Exact bool
	// Features says whether native histograms and exemplars can be read
	// back (the features case); VMRange that the receiver keeps a native
	// histogram as _count, _sum and _bucket{vmrange} series,
	// NoExemplars that it keeps no exemplars, and Metadata that it serves
	// the metadata it was sent at /api/v1/metadata.
	Features, VMRange, NoExemplars, Metadata bool
	// build writes the binary to bin.
	build func(ctx context.Context, bin string) error
	// argv returns the command lines of the receiver's processes, the
	// receiver itself first (Thanos: receive, then a query reading from
	// it), with the binary at bin and the data in dir, listening on the
	// 127.0.0.1 addresses addr picks by name.
	argv func(bin, dir string, addr func(name string) string) [][]string
	// The address named "http" is read from; it is also written to, and
	// its /metrics counts the samples taken, unless writeAt and metricsAt
	// name others.
	writeAt, metricsAt string
	// writePath and readyPath are the paths of the remote-write endpoint and
	// of a GET that answers 200 once the receiver is ready.
	writePath, readyPath string
	// ready, when set, replaces readyPath: whether the instance is ready,
	// and has been since (re)started at since.
	ready func(ctx context.Context, in *instance, since time.Time) bool
	// read returns every series between from and to (ms).
	read func(ctx context.Context, base string, from, to int64) ([]Series, error)
	// taken returns how many samples the receiver took so far.
	taken func(ctx context.Context, base string) (float64, error)
}

// Skipped are receivers the issue asks for that are not run here, and why;
// the table reports them so that none passes silently.
var Skipped = []Result{
	{Receiver: "mimir", Version: "—", Err: "skipped: not used: AGPL-3.0, and the module proxy lists no version of github.com/grafana/mimir"},
}

// All are the receivers bin/e2e receivers knows; those with OptIn run only
// when named.
func All(prometheusBin string) []Receiver {
	return []Receiver{Prometheus(prometheusBin), VictoriaMetrics(), Thanos()}
}

// instance is a receiver running on 127.0.0.1: its processes, each with
// a log in dir.
type instance struct {
	r     Receiver
	dir   string
	argv  [][]string
	procs []*exec.Cmd
	logs  []*os.File
	// base is the "http" address, read from; write the remote-write URL;
	// metrics the address whose /metrics count the samples taken.
	base, write, metrics string
	addrs                map[string]string
}

// start runs r's binary at bin with a fresh data directory under work.
func start(ctx context.Context, r Receiver, bin, work string) (*instance, error) {
	dir, err := os.MkdirTemp(work, r.Name+"-")
	if err != nil {
		return nil, err
	}
	in := &instance{r: r, dir: dir, addrs: map[string]string{}}
	in.argv = r.argv(bin, filepath.Join(dir, "data"), in.addr)
	in.procs, in.logs = make([]*exec.Cmd, len(in.argv)), make([]*os.File, len(in.argv))
	in.base = "http://" + in.addr("http")
	in.write = "http://" + in.addr(or(r.writeAt, "http")) + r.writePath
	in.metrics = "http://" + in.addr(or(r.metricsAt, "http"))
	for i := range in.argv {
		if err := in.run(i); err != nil {
			in.stop()
			return nil, err
		}
	}
	if err := in.waitReady(ctx, time.Now(), time.Minute); err != nil {
		in.stop()
		return nil, fmt.Errorf("%s: %w (its logs: %s)", r.Name, err, filepath.Join(dir, "receiver*.log"))
	}
	return in, nil
}

// addr returns the address named name, picking a free one, not given to
// another name, the first time.
func (in *instance) addr(name string) string {
	if a, ok := in.addrs[name]; ok {
		return a
	}
	for {
		a, err := freeAddr()
		if err != nil {
			panic(err) // no free port on 127.0.0.1: nothing here can run
		}
		if !slices.Contains(slices.Collect(maps.Values(in.addrs)), a) {
			in.addrs[name] = a
			return a
		}
	}
}

// run starts process i, its output appended to receiver.log (the first)
// or receiver-i.log.
func (in *instance) run(i int) error {
	name := "receiver.log"
	if i > 0 {
		name = fmt.Sprintf("receiver-%d.log", i)
	}
	log, err := os.OpenFile(filepath.Join(in.dir, name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(in.argv[i][0], in.argv[i][1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = in.dir, log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", in.r.Name, err)
	}
	in.procs[i], in.logs[i] = cmd, log
	return nil
}

func (in *instance) writeURL() string { return in.write }

// waitReady waits until the receiver is ready, (re)started at since.
func (in *instance) waitReady(ctx context.Context, since time.Time, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if in.r.ready != nil && in.r.ready(ctx, in, since) || in.r.ready == nil && status(ctx, in.base+in.r.readyPath) == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("not ready within " + timeout.String())
}

// status is the status code of a GET of u, 0 when there was no answer.
func status(ctx context.Context, u string) int {
	resp, err := get(ctx, u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stop stops every process, the last started first.
func (in *instance) stop() {
	for i := len(in.procs) - 1; i >= 0; i-- {
		in.stopProc(i)
	}
}

// stopProc stops process i (SIGINT, then SIGKILL after 30 s).
func (in *instance) stopProc(i int) {
	cmd := in.procs[i]
	if cmd == nil {
		return
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	in.logs[i].Close()
	in.procs[i] = nil
}

// or is s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// freeAddr returns a 127.0.0.1 address with a port free now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Binary returns the path of r's binary in cache, building it first when
// it is not there.
func Binary(ctx context.Context, r Receiver, cache string) (string, error) {
	bin := filepath.Join(cache, r.Name+"-"+r.Version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	if err := r.build(ctx, bin); err != nil {
		return "", fmt.Errorf("build %s %s: %w", r.Name, r.Version, err)
	}
	return bin, nil
}

// goInstall builds pkg@version with go install into a temporary GOBIN and
// moves the binary to bin.
func goInstall(ctx context.Context, pkg, version, bin string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(bin), "gobin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", pkg+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return os.Rename(filepath.Join(tmp, filepath.Base(pkg)), bin)
}
