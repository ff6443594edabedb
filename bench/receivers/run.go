package receivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/walship/walship/bench/shape"
	"github.com/walship/walship/bench/targets"
	"github.com/walship/walship/bench/walgen"
)

// Cases are what Run does with a receiver.
var Cases = []string{"replay", "sidecar", "agent", "restart", "429", "too-old", "hashmod", "features"}

// caseShape is the WAL each case ships: restart needs one long enough to
// restart the receiver while it is being shipped.
func caseShape(c string, s shape.Shape) shape.Shape {
	switch c {
	case "restart":
		return shape.Shape{Name: "20000x25", Series: 20_000, Scrapes: 25}
	case "hashmod": // 10 targets for 3 agents
		return shape.Shape{Name: "15000x10", Series: 15_000, Scrapes: 10}
	}
	return s
}

// externalLabel is added by walship to every series (global
// external_labels), and expected back.
var externalLabel = labels.Label{Name: "walship_e2e", Value: "receivers"}

// Result is how one receiver took one case over one protocol. (too-old:
// Samples and Got* are of the first WAL; a receiver that takes the older
// samples too has them counted in Older.)
type Result struct {
	Receiver, Version, Protocol, Case string
	// WalshipExit is walship's exit status (0: everything acknowledged;
	// the sidecar is stopped with SIGTERM once everything arrived).
	WalshipExit int
	// Series and Samples were written; Got* were read back.
	Series, Samples, GotSeries, GotSamples int
	// Missing samples were written and not read back, Extra read back and
	// not written, Wrong read back with another value, Duplicates read
	// back more than once (sent again after a kill: a receiver that does
	// not deduplicate keeps both).
	Missing, Extra, Wrong, Duplicates int
	// FellBack says walship fell back from RW2 to RW1 for this receiver.
	FellBack bool
	// Older (too-old) is how many of the second WAL's older samples the
	// receiver took; OlderExit is the second walship replay's exit status
	// (1: the receiver refused them, not retried), and OlderFailed what
	// it counted as failed.
	Older, OlderExit, OlderFailed int
	// Overlap counts series sent by two agents, Holes series sent by none
	// (hashmod); Excused is how many samples a kill may lose (hashmod).
	Overlap, Holes, Excused int
	// Note says what the case did (restarts, refused requests).
	Note string
	Err  string
}

// Skip reports whether the result is of a receiver not run (Skipped).
func (r Result) Skip() bool { return strings.HasPrefix(r.Err, "skipped: ") }

// OK says everything written was read back as it was (too-old: the older
// samples were either all taken with walship exiting 0, or all refused
// with walship exiting 1).
func (r Result) OK() bool {
	older := r.Case != "too-old" || r.OlderExit == 0 && r.Older == r.Samples || r.OlderExit == 1 && r.Older == 0 && r.OlderFailed == r.Samples
	return older && r.Err == "" && r.WalshipExit == 0 && r.Missing <= r.Excused && r.Extra == 0 && r.Wrong == 0 &&
		r.GotSamples == r.Samples-r.Missing+r.Duplicates && r.Overlap == 0 && r.Holes == 0
}

// Run ships a WAL of shape s (caseShape), written with timestamps of the
// last hours, to a fresh instance of r over protocol ("rw1" or "rw2") as
// case c says, and reads every sample back:
//   - replay: walship replay;
//   - sidecar: walship sidecar --wal.start=beginning, stopped (SIGTERM)
//     once everything was read back;
//   - agent: walship agent scraping the shape's targets (bench/targets,
//     on 127.0.0.1, timestamps from a minute ahead) every second, stopped
//     once everything was read back;
//   - restart: walship replay, the receiver restarted (same data) once it
//     has taken some of the samples;
//   - 429: walship replay through a proxy that answers the first requests
//     429 (Retry-After: 1) before it passes them on;
//   - hashmod: three agents share the targets (runScaleOut);
//   - features: native histograms and exemplars (runFeatures);
//   - too-old: walship replay, then a replay of a second WAL of the same
//     series an hour older, which a receiver may refuse (out of order, too
//     old): refused for good, counted, never retried.
func Run(ctx context.Context, r Receiver, bin, walship, work string, s shape.Shape, protocol, c string) Result {
	s = caseShape(c, s)
	res := Result{Receiver: r.Name, Version: r.Version, Protocol: protocol, Case: c, Series: s.Series, Samples: int(s.Samples())}
	fail := func(err error) Result { res.Err = err.Error(); return res }
	if c == "features" && !r.Features {
		return Result{Receiver: r.Name, Version: r.Version, Protocol: protocol, Case: c,
			Err: "skipped: reading native histograms and exemplars back is not built for this receiver yet"}
	}
	in, err := start(ctx, r, bin, work)
	if err != nil {
		return fail(err)
	}
	defer func() { in.stop() }()
	dir := in.dir

	base := time.Now().Add(-time.Duration(s.Scrapes+2) * shape.Interval * time.Millisecond).Truncate(time.Minute).UnixMilli()
	walDir := filepath.Join(dir, "wal")
	if c != "agent" && c != "hashmod" && c != "features" { // those ship what they scrape, or a WAL of their own
		if _, err := walgen.WriteFrom(walDir, s, base); err != nil {
			return fail(err)
		}
	}
	url := in.writeURL()
	var proxy *refusingProxy
	if c == "429" {
		proxy = newRefusingProxy(url, 3)
		defer proxy.Close()
		url = proxy.URL + "/api/v1/write"
	}
	cfg := filepath.Join(dir, "walship.yml")
	conf := fmt.Sprintf("global:\n  external_labels:\n    %s: %s\nremote_write:\n  - url: %s\n    name: %s\n", externalLabel.Name, externalLabel.Value, url, r.Name)
	if protocol == "rw2" {
		conf += "    protobuf_message: io.prometheus.write.v2.Request\n"
	}
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return fail(err)
	}
	from, to := base-shape.Interval, base+int64(s.Scrapes+1)*shape.Interval
	want := expected(s, base)
	logPath := filepath.Join(dir, "walship.log")
	args := []string{"--config.file=" + cfg, "--wal.dir=" + walDir, "--storage.agent.path=" + filepath.Join(dir, "walship-data")}
	switch c {
	case "features":
		if err := runFeatures(ctx, &res, r, in, walship, dir, conf, base); err != nil {
			return fail(err)
		}
		return res
	case "hashmod":
		if err := runScaleOut(ctx, &res, r, in, walship, dir, conf, s); err != nil {
			return fail(err)
		}
		return res
	case "agent":
		base = time.Now().Add(time.Minute).Truncate(time.Second).UnixMilli()
		from, to, want = base-shape.Interval, base+int64(s.Scrapes+1)*shape.Interval, expected(s, base)
		tg := httptest.NewServer(targets.New(s).Handler())
		defer tg.Close()
		if err := resetTargets(tg.URL, base); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(cfg, []byte(agentConfig(conf, tg.Listener.Addr().String(), s.Targets())), 0o644); err != nil {
			return fail(err)
		}
		res.WalshipExit, err = runUntil(ctx, logPath, walship, []string{"agent", "--config.file=" + cfg,
			"--storage.agent.path=" + filepath.Join(dir, "walship-data"), "--web.listen-address=127.0.0.1:0"}, func() bool {
			got, err := r.read(ctx, in.base, from, to)
			return err == nil && count(got) >= res.Samples
		})
	case "sidecar":
		res.WalshipExit, err = runUntil(ctx, logPath, walship, append([]string{"sidecar", "--wal.start=beginning"}, args...), func() bool {
			got, err := r.read(ctx, in.base, from, to)
			return err == nil && count(got) >= res.Samples
		})
	case "restart":
		var takenBefore float64
		restarted := make(chan error, 1)
		go func() {
			restarted <- in.restartWhen(ctx, func() bool {
				n, err := r.taken(ctx, in.metrics)
				takenBefore = n
				return err == nil && n > 0
			})
		}()
		res.WalshipExit, err = runWalship(ctx, logPath, walship, append([]string{"replay"}, args...)...)
		if rerr := <-restarted; rerr != nil && err == nil {
			err = rerr
		}
		res.Note = fmt.Sprintf("receiver restarted once it had taken %.0f samples", takenBefore)
	default:
		res.WalshipExit, err = runWalship(ctx, logPath, walship, append([]string{"replay"}, args...)...)
	}
	if proxy != nil {
		res.Note = fmt.Sprintf("%d requests answered 429 (Retry-After: 1) by a proxy in front first", proxy.refused.Load())
	}
	if c == "too-old" && err == nil {
		err = shipOlder(ctx, &res, r, in, walship, dir, cfg, s, base)
	}
	if err != nil {
		return fail(err)
	}
	if log, err := os.ReadFile(logPath); err == nil {
		res.FellBack = strings.Contains(string(log), "falling back to 1.0")
	}
	got, err := r.read(ctx, in.base, from, to)
	if err != nil {
		return fail(err)
	}
	compare(&res, want, got, r.Exact)
	return res
}

// shipOlder ships a second WAL of s an hour older than base with walship
// replay, and notes in res how the receiver took it (Older, OlderExit);
// the first WAL is read back apart, after it.
func shipOlder(ctx context.Context, res *Result, r Receiver, in *instance, walship, dir, cfg string, s shape.Shape, base int64) error {
	older := base - int64(time.Hour/time.Millisecond)
	walDir := filepath.Join(dir, "wal-older")
	if _, err := walgen.WriteFrom(walDir, s, older); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "walship-older.log")
	exit, err := runWalship(ctx, logPath, walship, "replay", "--config.file="+cfg, "--wal.dir="+walDir,
		"--storage.agent.path="+filepath.Join(dir, "walship-data-older"))
	if err != nil {
		return err
	}
	res.OlderExit = exit
	log, _ := os.ReadFile(logPath)
	if m := failedRE.FindSubmatch(log); m != nil { // replay's last line: "...; N failed, M dropped"
		res.OlderFailed, _ = strconv.Atoi(string(m[1]))
	}
	got, err := r.read(ctx, in.base, older-shape.Interval, base-shape.Interval)
	if err != nil {
		return err
	}
	res.Older = count(got)
	if exit == 1 {
		code := "?"
		if m := statusRE.FindSubmatch(log); m != nil {
			code = string(m[1])
		}
		res.Note = fmt.Sprintf("the older samples refused (%s), %d counted as failed, not retried: walship replay exit 1", code, res.OlderFailed)
	} else {
		res.Note = fmt.Sprintf("the older samples taken (%d), walship replay exit %d", res.Older, exit)
	}
	return nil
}

// failedRE finds the failed count in replay's summary line, statusRE the
// status of the refusal it logged.
var (
	failedRE = regexp.MustCompile(`(\d+) failed, \d+ dropped`)
	statusRE = regexp.MustCompile(`HTTP status (\d+)`)
)

// agentConfig is conf (external labels, remote_write) with a job scraping
// every target of the shape at addr (/metrics/N) every second, keeping the
// labels and timestamps the targets expose; the scrapes' own series (up,
// scrape_*) are not sent.
func agentConfig(conf, addr string, n int) string {
	var b strings.Builder
	b.WriteString(strings.Replace(conf, "global:\n", "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n", 1))
	b.WriteString("    write_relabel_configs:\n      - {source_labels: [__name__], regex: 'up|scrape_.+', action: drop}\n")
	b.WriteString("scrape_configs:\n")
	b.WriteString(targets.ScrapeJob(addr, n))
	return b.String()
}

// resetTargets makes every target start again at scrape 0, the first at base.
func resetTargets(url string, base int64) error {
	resp, err := http.Post(url+"/reset?base="+strconv.FormatInt(base, 10), "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("targets: reset: %s", resp.Status)
	}
	return nil
}

// count is the number of samples in series.
func count(series []Series) int {
	n := 0
	for _, s := range series {
		n += len(s.Samples)
	}
	return n
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
		lb := labels.NewBuilder(shape.Labels(&b, i))
		lb.Set(externalLabel.Name, externalLabel.Value)
		out[lb.Labels().String()] = samples
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
		times := make(map[int64]bool, len(s.Samples))
		for _, smp := range s.Samples {
			res.GotSamples++
			v, ok := w[smp.T]
			switch {
			case times[smp.T]:
				res.Duplicates++
			case !ok:
				res.Extra++
			case !same(v, smp.V, exact):
				res.Wrong++
			}
			times[smp.T] = true
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

// runUntil runs the walship binary with args until done says so (polled),
// then stops it with SIGTERM, and returns its exit status.
func runUntil(ctx context.Context, logPath, walship string, args []string, done func() bool) (int, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	cmd := exec.Command(walship, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !done() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond) // polling the receiver, not synchronising
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// WriteMarkdown writes the results as a table.
func WriteMarkdown(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| receiver | version | protocol | case | walship exit | series written / read | samples written / read | missing | extra | wrong value | note |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		note := ""
		switch {
		case r.Err != "":
			note = "error: " + r.Err
		case r.FellBack:
			note = "RW2 not taken (415, or 2xx without the written headers): walship fell back to RW1"
		}
		if r.Note != "" {
			note = strings.TrimPrefix(note+"; "+r.Note, "; ")
		}
		if r.Duplicates > 0 {
			note += fmt.Sprintf("; %d samples read back twice (sent again after the kill; this receiver keeps duplicates)", r.Duplicates)
		}
		status := "ok"
		switch {
		case r.Skip():
			status, note = "skipped", strings.TrimPrefix(r.Err, "skipped: ")
		case !r.OK():
			status = "**FAILED**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d | %d / %d | %d / %d | %d | %d | %d | %s %s |\n",
			r.Receiver, r.Version, strings.ToUpper(r.Protocol), r.Case, r.WalshipExit, r.Series, r.GotSeries, r.Samples, r.GotSamples,
			r.Missing, r.Extra, r.Wrong, status, note)
	}
}
