package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Usage is what a process used, as wait4 reports it for the process
// itself (children would be counted apart; the senders start none).
type Usage struct {
	UserSeconds float64 `json:"user_seconds"`
	SysSeconds  float64 `json:"sys_seconds"`
	MaxRSSBytes int64   `json:"max_rss_bytes"`
	WallSeconds float64 `json:"wall_seconds"` // start to exit
	ExitCode    int     `json:"exit_code"`
}

// CPUSeconds is user + system time.
func (u Usage) CPUSeconds() float64 { return u.UserSeconds + u.SysSeconds }

// Process is a program the harness runs and measures (a sender, an
// agent): started with Start, its usage read once it exited.
type Process struct {
	cmd    *exec.Cmd
	begin  time.Time
	exited chan struct{} // closed when Wait returned
	usage  Usage
	err    error
	log    *os.File

	hwm atomic.Int64 // the highest VmHWM read, bytes (see PeakRSS)
}

// env is the environment every measured process gets: the harness's own,
// with GOGC=75 (Prometheus's default, which cmd/prometheus sets when GOGC
// is unset) and no GOMEMLIMIT, for both senders alike.
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GOGC=75")
}

// Start runs argv in dir with its standard error (and output) in logFile,
// in the environment of env.
func Start(argv []string, dir, logFile string) (*Process, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env()
	cmd.Stdout, cmd.Stderr = log, log
	p := &Process{cmd: cmd, exited: make(chan struct{}), log: log}
	p.begin = time.Now()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	go p.wait()
	go p.pollHWM()
	return p, nil
}

// pollHWM reads the process's VmHWM every 100 ms until it exits.
func (p *Process) pollHWM() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		p.readHWM()
		select {
		case <-p.exited:
			return
		case <-tick.C:
		}
	}
}

// readHWM reads VmHWM from /proc (nothing once the process is gone).
func (p *Process) readHWM() {
	if hwm := p.status("VmHWM"); hwm > p.hwm.Load() {
		p.hwm.Store(hwm)
	}
}

// RSS is the process's resident set now (VmRSS), 0 once it is gone.
func (p *Process) RSS() int64 { return p.status("VmRSS") }

// status returns a size field of the process's /proc status in bytes, 0
// when it cannot be read (the process is gone).
func (p *Process) status(field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// PeakRSS is the process's peak resident set as its own VmHWM says, read
// every 100 ms and before a Kill. Unlike wait4's maxrss it never counts
// the harness: a child started by vfork, as os/exec starts it, inherits
// its parent's high-water mark at exec (Linux keeps the larger of the
// two), so wait4 reports at least the harness's own peak.
func (p *Process) PeakRSS() int64 { return p.hwm.Load() }

func (p *Process) wait() {
	defer close(p.exited)
	p.err = p.cmd.Wait()
	p.usage.WallSeconds = time.Since(p.begin).Seconds()
	p.log.Close()
	st := p.cmd.ProcessState
	if st == nil {
		return
	}
	p.usage.ExitCode = st.ExitCode()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		p.usage.UserSeconds = time.Duration(ru.Utime.Nano()).Seconds()
		p.usage.SysSeconds = time.Duration(ru.Stime.Nano()).Seconds()
		p.usage.MaxRSSBytes = ru.Maxrss * 1024 // KiB on Linux
	}
}

// Stop sends SIGTERM and waits up to grace for the exit, then kills.
func (p *Process) Stop(grace time.Duration) error {
	p.readHWM()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.cmd.Path, grace)
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() {
	p.readHWM()
	p.cmd.Process.Kill()
	<-p.exited
}

// Signal sends sig (SIGHUP: reload).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited is closed once the process exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Usage is what the process used; read it once Exited is closed.
func (p *Process) Usage() Usage { return p.usage }
