package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/walship/walship/bench/receiver"
)

// server is a program of the harness serving HTTP in a process of its
// own (the receiver, the targets), so that its CPU and memory are not
// counted with a sender's. It says its address as its first line of
// standard output.
type server struct {
	cmd  *exec.Cmd
	base string // http://host:port
}

func startServer(argv ...string) (*server, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s did not say its address: %w", argv[0], err)
	}
	return &server{cmd: cmd, base: "http://" + strings.TrimSpace(line)}, nil
}

func (s *server) close() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// addr is the server's host:port.
func (s *server) addr() string { return strings.TrimPrefix(s.base, "http://") }

// reset posts to its /reset, with query q when it is not empty.
func (s *server) reset(q ...string) error {
	u := s.base + "/reset"
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	resp, err := http.Post(u, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// receiverProc is the receiver in its own process.
type receiverProc struct{ *server }

func startReceiver(bin string) (*receiverProc, error) {
	s, err := startServer(bin)
	if err != nil {
		return nil, err
	}
	return &receiverProc{s}, nil
}

// url is where senders write.
func (r *receiverProc) url() string { return r.base + "/" }

func (r *receiverProc) stats() (receiver.Stats, error) {
	return r.get(context.Background(), r.base+"/stats")
}

// wait returns once n samples arrived (ok), or the receiver's stats when
// timeout passed first.
func (r *receiverProc) wait(ctx context.Context, n int64, timeout time.Duration) (receiver.Stats, bool, error) {
	q := url.Values{"samples": {strconv.FormatInt(n, 10)}, "timeout": {timeout.String()}}
	s, err := r.get(ctx, r.base+"/wait?"+q.Encode())
	if err != nil {
		return s, false, err
	}
	return s, s.Sum.Samples >= n, nil
}

func (r *receiverProc) get(ctx context.Context, u string) (receiver.Stats, error) {
	var s receiver.Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("receiver %s: %w", u, err)
	}
	return s, nil
}
