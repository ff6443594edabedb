package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/metrics"
	runtimepprof "runtime/pprof"
	"time"
)

// profileFlags are hidden flags that write Go profiles of a run, for
// finding where a command spends CPU and memory (BENCHMARKS.md says how
// they are used): the CPU profile covers the whole run; the heap profile
// is the one taken when the live heap was at its largest (checked every
// 200 ms; the profile is as of the collection that measured it).
type profileFlags struct {
	cpu, heap string

	cpuFile *os.File
	stopped chan struct{} // closed to stop the heap watcher
	done    chan []byte   // the watcher's largest profile
}

// start begins the profiles that were asked for.
func (p *profileFlags) start() error {
	if p.cpu != "" {
		f, err := os.Create(p.cpu)
		if err != nil {
			return fmt.Errorf("--debug.cpuprofile: %w", err)
		}
		if err := runtimepprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--debug.cpuprofile: %w", err)
		}
		p.cpuFile = f
	}
	if p.heap != "" {
		p.stopped, p.done = make(chan struct{}), make(chan []byte, 1)
		go p.watchHeap()
	}
	return nil
}

// watchHeap keeps the heap profile of the largest live heap seen.
func (p *profileFlags) watchHeap() {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var largest uint64
	var profile bytes.Buffer
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if live := sample[0].Value.Uint64(); live > largest {
			largest = live
			profile.Reset()
			runtimepprof.Lookup("heap").WriteTo(&profile, 0)
		}
		select {
		case <-tick.C:
		case <-p.stopped:
			p.done <- profile.Bytes()
			return
		}
	}
}

// stop ends the profiles and writes them; later calls do nothing.
func (p *profileFlags) stop(logger *slog.Logger) {
	if p.stopped != nil {
		close(p.stopped)
		if err := os.WriteFile(p.heap, <-p.done, 0o644); err != nil {
			logger.Warn("Writing the heap profile failed", "err", err)
		}
		p.stopped = nil
	}
	if p.cpuFile != nil {
		runtimepprof.StopCPUProfile()
		if err := p.cpuFile.Close(); err != nil {
			logger.Warn("Writing the CPU profile failed", "err", err)
		}
		p.cpuFile = nil
	}
}

// handlePprof serves Go's profiles under /debug/pprof/, as Prometheus does.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
