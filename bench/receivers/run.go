package receivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/walship/walship/bench/shape"
	"github.com/walship/walship/bench/walgen"
)

// Result is how one receiver took one protocol.
type Result struct {
	Receiver, Version, Protocol string
	// WalshipExit is walship replay's exit status (0: everything acknowledged).
	WalshipExit int
	// Series and Samples were written; Got* were read back.
	Series, Samples, GotSeries, GotSamples int
	// Missing samples were written and not read back, Extra read back and
	// not written, Wrong read back with another value.
	Missing, Extra, Wrong int
	// FellBack says walship fell back from RW2 to RW1 for this receiver.
	FellBack bool
	Err      string
}

// OK says everything written was read back as it was.
func (r Result) OK() bool {
	return r.Err == "" && r.WalshipExit == 0 && r.Missing == 0 && r.Extra == 0 && r.Wrong == 0 && r.GotSamples == r.Samples
}

// Run ships a WAL of shape s, written with timestamps of the last hour,
// to a fresh instance of r with `walship replay` over protocol ("rw1" or
// "rw2"), and reads every sample back.
func Run(ctx context.Context, r Receiver, bin, walship, work string, s shape.Shape, protocol string) Result {
	res := Result{Receiver: r.Name, Version: r.Version, Protocol: protocol, Series: s.Series, Samples: int(s.Samples())}
	fail := func(err error) Result { res.Err = err.Error(); return res }
	in, err := start(ctx, r, bin, work)
	if err != nil {
		return fail(err)
	}
	defer in.stop()
	dir := filepath.Dir(in.log.Name())

	base := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	walDir := filepath.Join(dir, "wal")
	if _, err := walgen.WriteFrom(walDir, s, base); err != nil {
		return fail(err)
	}
	cfg := filepath.Join(dir, "walship.yml")
	rw := fmt.Sprintf("remote_write:\n  - url: %s\n    name: %s\n", in.writeURL(), r.Name)
	if protocol == "rw2" {
		rw += "    protobuf_message: io.prometheus.write.v2.Request\n"
	}
	if err := os.WriteFile(cfg, []byte(rw), 0o644); err != nil {
		return fail(err)
	}
	logPath := filepath.Join(dir, "walship.log")
	res.WalshipExit, err = runWalship(ctx, logPath, walship, "replay", "--config.file="+cfg, "--wal.dir="+walDir,
		"--storage.agent.path="+filepath.Join(dir, "walship-data"))
	if err != nil {
		return fail(err)
	}
	if log, err := os.ReadFile(logPath); err == nil {
		res.FellBack = strings.Contains(string(log), "falling back to 1.0")
	}

	got, err := r.read(ctx, in.base, base-shape.Interval, base+int64(s.Scrapes+1)*shape.Interval)
	if err != nil {
		return fail(err)
	}
	compare(&res, expected(s, base), got, r.Exact)
	return res
}

// expected returns the samples of shape s written from base, by series.
func expected(s shape.Shape, base int64) map[string]map[int64]float64 {
	out := make(map[string]map[int64]float64, s.Series)
	var b labels.ScratchBuilder
	for i := range s.Series {
		samples := make(map[int64]float64, s.Scrapes)
		for scrape := range s.Scrapes {
			samples[shape.TimestampFrom(base, i/shape.SeriesPerTarget, scrape)] = shape.Value(i, scrape)
		}
		out[shape.Labels(&b, i).String()] = samples
	}
	return out
}

// compare counts, in res, what got holds of want.
func compare(res *Result, want map[string]map[int64]float64, got []Series, exact bool) {
	res.GotSeries = len(got)
	seen := map[string]bool{}
	for _, s := range got {
		key := s.Labels.String()
		seen[key] = true
		w := want[key]
		for _, smp := range s.Samples {
			res.GotSamples++
			v, ok := w[smp.T]
			switch {
			case !ok:
				res.Extra++
			case !same(v, smp.V, exact):
				res.Wrong++
			}
		}
		for t := range w {
			found := false
			for _, smp := range s.Samples {
				found = found || smp.T == t
			}
			if !found {
				res.Missing++
			}
		}
	}
	for key, w := range want {
		if !seen[key] {
			res.Missing += len(w)
		}
	}
}

// same compares a value read back with the one written: exactly, or to
// twelve significant digits.
func same(want, got float64, exact bool) bool {
	if exact {
		return want == got || math.IsNaN(want) && math.IsNaN(got)
	}
	return math.Abs(want-got) <= 1e-12*math.Max(1, math.Abs(want))
}

// runWalship runs the walship binary with args, its output in logPath, and
// returns its exit status.
func runWalship(ctx context.Context, logPath, walship string, args ...string) (int, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, walship, args...)
	cmd.Stdout, cmd.Stderr = log, log
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// WriteMarkdown writes the results as a table.
func WriteMarkdown(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| receiver | version | protocol | walship exit | series written / read | samples written / read | missing | extra | wrong value | note |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		note := ""
		switch {
		case r.Err != "":
			note = "error: " + r.Err
		case r.FellBack:
			note = "RW2 refused (415): walship fell back to RW1"
		}
		status := "ok"
		if !r.OK() {
			status = "**FAILED**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d / %d | %d / %d | %d | %d | %d | %s %s |\n",
			r.Receiver, r.Version, strings.ToUpper(r.Protocol), r.WalshipExit, r.Series, r.GotSeries, r.Samples, r.GotSamples,
			r.Missing, r.Extra, r.Wrong, status, note)
	}
}
