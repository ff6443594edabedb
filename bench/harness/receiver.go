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

// receiverProc is the receiver in its own process, so that its CPU and
// memory are not counted with either sender's.
type receiverProc struct {
	cmd  *exec.Cmd
	base string // http://host:port
}

func startReceiver(bin string) (*receiverProc, error) {
	cmd := exec.Command(bin)
	cmd.Env = env()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start receiver: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("receiver did not say its address: %w", err)
	}
	return &receiverProc{cmd: cmd, base: "http://" + strings.TrimSpace(line)}, nil
}

func (r *receiverProc) close() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

// url is where senders write.
func (r *receiverProc) url() string { return r.base + "/" }

func (r *receiverProc) reset() error {
	resp, err := http.Post(r.base+"/reset", "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

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
