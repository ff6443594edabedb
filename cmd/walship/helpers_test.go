package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

// seenSample is how one sample (a series at a timestamp) arrived: with
// which value last, and how many times.
type seenSample struct {
	value float64
	times int
}

// seen returns what r accepted, by series and timestamp.
func seen(r *testkit.Receiver) map[string]map[int64]seenSample {
	out := map[string]map[int64]seenSample{}
	for key, samples := range r.Samples() {
		m := map[int64]seenSample{}
		for _, s := range samples {
			m[s.Timestamp] = seenSample{value: s.Value, times: m[s.Timestamp].times + 1}
		}
		out[key] = m
	}
	return out
}

// values returns, for the series of r whose labels contain
// name="metric", how many times each value arrived.
func values(r *testkit.Receiver, metric string) map[float64]int {
	out := map[float64]int{}
	for key, m := range seen(r) {
		if !strings.Contains(key, `__name__="`+metric+`"`) {
			continue
		}
		for _, s := range m {
			out[s.value] += s.times
		}
	}
	return out
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// process is a walship started in the background.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	code   int
	addr   string // web address, once listening
}

var listenRE = regexp.MustCompile(`msg="Web server listening" address=(\S+)`)

// start runs walship in dir with args and waits until its web server
// listens (when wantWeb).
func start(t *testing.T, dir string, wantWeb bool, args ...string) *process {
	t.Helper()
	return startBinary(t, binary, dir, wantWeb, args...)
}

// startBinary is start with another build of walship.
func startBinary(t *testing.T, bin, dir string, wantWeb bool, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	p := &process{t: t, cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.stderr
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		err := cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.code = -int(ws.Signal())
		}
		_ = err
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("walship %s output:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	if wantWeb {
		require.Eventually(t, func() bool {
			if m := listenRE.FindStringSubmatch(p.stderr.String()); m != nil {
				p.addr = m[1]
				return true
			}
			return p.exited()
		}, 20*time.Second, 10*time.Millisecond, "walship did not start listening")
		require.NotEmpty(t, p.addr, "walship exited: %s", p.stderr.String())
	}
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *process) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("walship did not exit within %s:\n%s", timeout, p.stderr.String())
		return 0
	}
}

func (p *process) signal(s os.Signal) { require.NoError(p.t, p.cmd.Process.Signal(s)) }

// get fetches path from the web server.
func (p *process) get(path string) (int, string) {
	return httpDo(p.t, http.MethodGet, "http://"+p.addr+path)
}

func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of the sample line of /metrics that starts with
// prefix (a metric name with its labels), or -1.
func (p *process) metric(prefix string) float64 {
	_, body := p.get("/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) {
			var v float64
			if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
				return v
			}
		}
	}
	return -1
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// remoteWrite is a remote_write entry for a test receiver that sends
// quickly.
func remoteWrite(name, url string) string {
	return fmt.Sprintf(`  - name: %s
    url: %s
    send_exemplars: true
    send_native_histograms: true
    queue_config:
      batch_send_deadline: 100ms
      min_backoff: 10ms
      max_backoff: 100ms
`, name, url)
}

func fixture(name string) string { return filepath.Join("..", "..", "testdata", "wal", name) }
