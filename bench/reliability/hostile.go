package reliability

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/walship/walship/bench/harness"
)

// This file is hostile input at production size: a log upstream's writer
// wrote, with a segment no writer wrote among its segments (random bytes,
// zeros, or one record that never ends, each as large as asked), read by
// walship inspect and walship replay as processes. Each must read and ship
// every sample of the good segments, say what it could not read, exit as
// documented (1 for damage; 0 for an unfinished record at the log's end,
// which is a record still being written), and not panic; the table says
// what each cost (peak RSS, time).

// HostileOptions configure RunHostile.
type HostileOptions struct {
	Walship string // the walship binary
	Work    string // where the logs are written (Size bytes each, and more)
	Size    int64  // the hostile segment's size
	Series  int    // series of the good log
	Records int    // samples records of one sample per series in the good log's first segment
}

// HostileResult is one hostile log read by one command.
type HostileResult struct {
	Case     string  `json:"case"`
	Command  string  `json:"command"` // inspect or replay
	Size     int64   `json:"size"`
	Want     int     `json:"want"`    // samples of the good segments
	Samples  int     `json:"samples"` // counted (inspect) or received (replay)
	Exit     int     `json:"exit"`
	WantExit int     `json:"want_exit"`
	PeakRSS  int64   `json:"peak_rss_bytes"`
	Seconds  float64 `json:"seconds"`
	Err      string  `json:"error,omitempty"`
}

// hostileCase is a segment no writer wrote: where it goes (the log's
// middle, or its end) and what it holds.
type hostileCase struct {
	name    string
	last    bool // an unfinished record is only ever at the log's end
	damaged bool
	write   func(w io.Writer, size int64) error
}

var hostileCases = []hostileCase{
	{"random", false, true, func(w io.Writer, size int64) error {
		_, err := io.CopyN(w, rand.NewChaCha8([32]byte{1, 2}), size)
		return err
	}},
	{"zeros", false, true, func(w io.Writer, size int64) error {
		_, err := io.CopyN(w, zeros{}, size)
		return err
	}},
	{"endless-record", true, false, writeEndlessRecord},
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// writeEndlessRecord writes a first fragment and then middle fragments,
// each with a good checksum, page after page: a record that never ends.
func writeEndlessRecord(w io.Writer, size int64) error {
	payload := make([]byte, walPage-7)
	for i := range payload {
		payload[i] = byte(i)
	}
	page := make([]byte, walPage)
	binary.BigEndian.PutUint16(page[1:], uint16(len(payload)))
	binary.BigEndian.PutUint32(page[3:], crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	copy(page[7:], payload)
	for n := int64(0); n < size; n += walPage {
		page[0] = 3 // middle
		if n == 0 {
			page[0] = 2 // first
		}
		if _, err := w.Write(page); err != nil {
			return err
		}
	}
	return nil
}

// RunHostile writes a log for each hostile case and reads it with walship
// inspect and walship replay.
func RunHostile(ctx context.Context, o HostileOptions) ([]HostileResult, error) {
	var out []HostileResult
	for _, c := range hostileCases {
		dir := filepath.Join(o.Work, "hostile-"+c.name)
		if err := os.RemoveAll(dir); err != nil {
			return out, err
		}
		want, err := writeHostileLog(filepath.Join(dir, "wal"), c, o)
		if err != nil {
			return out, fmt.Errorf("%s: %w", c.name, err)
		}
		for _, command := range []string{"inspect", "replay"} {
			res := HostileResult{Case: c.name, Command: command, Size: o.Size, Want: want}
			if c.damaged {
				res.WantExit = 1
			}
			if err := runHostile(ctx, o.Walship, dir, o.Series, &res); err != nil {
				res.Err = err.Error()
			} else if res.Samples != want || res.Exit != res.WantExit {
				res.Err = fmt.Sprintf("%d samples and exit status %d, want %d and %d", res.Samples, res.Exit, want, res.WantExit)
			}
			out = append(out, res)
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return out, err
		}
	}
	return out, nil
}

// writeHostileLog writes, with upstream's writer, the series and
// o.Records samples records into segment 0 and ten more samples records
// into the segment after the hostile one (or before it, for a case that
// goes last); it returns how many samples the good segments hold.
func writeHostileLog(dir string, c hostileCase, o HostileOptions) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	var enc record.Encoder
	series := make([]record.RefSeries, o.Series)
	for i := range series {
		series[i] = record.RefSeries{Ref: chunks.HeadSeriesRef(i + 1), Labels: labels.FromStrings("__name__", "hostile_input", "series", strconv.Itoa(i))}
	}
	scrapes := 0
	writeSegment := func(records int, withSeries bool) error {
		w, err := wlog.New(nil, nil, dir, compression.Snappy)
		if err != nil {
			return err
		}
		if withSeries {
			if err := w.Log(enc.Series(series, nil)); err != nil {
				return err
			}
		}
		samples := make([]record.RefSample, o.Series)
		for range records {
			scrapes++
			for i := range samples {
				samples[i] = record.RefSample{Ref: series[i].Ref, T: int64(scrapes) * 1000, V: float64(i)}
			}
			if err := w.Log(enc.Samples(samples, nil)); err != nil {
				return err
			}
		}
		return w.Close()
	}
	hostile := func() error {
		_, last, err := wlog.Segments(dir)
		if err != nil {
			return err
		}
		f, err := os.Create(wlog.SegmentName(dir, last+1))
		if err != nil {
			return err
		}
		if err := c.write(f, o.Size); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	steps := []func() error{
		func() error { return writeSegment(o.Records, true) },
		hostile,
		func() error { return writeSegment(10, false) },
	}
	if c.last {
		steps[1], steps[2] = steps[2], steps[1]
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return 0, err
		}
	}
	return scrapes * o.Series, nil
}

// runHostile runs res.Command over the log in dir/wal and fills res.
func runHostile(ctx context.Context, walship, dir string, series int, res *HostileResult) error {
	walDir := filepath.Join(dir, "wal")
	logFile := filepath.Join(dir, res.Command+".log")
	if res.Command == "inspect" {
		log, err := os.Create(logFile)
		if err != nil {
			return err
		}
		defer log.Close()
		var stdout bytes.Buffer
		cmd := exec.CommandContext(ctx, walship, "inspect", "--wal.dir", walDir, "--json")
		cmd.Stdout, cmd.Stderr = &stdout, log
		begin := time.Now()
		err = cmd.Run()
		res.Seconds = time.Since(begin).Seconds()
		if cmd.ProcessState == nil {
			return err
		}
		res.Exit = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.PeakRSS = ru.Maxrss * 1024
		}
		var report struct{ Samples int }
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			return fmt.Errorf("inspect's report (log: %s): %w", logFile, err)
		}
		res.Samples = report.Samples
		return nil
	}

	rec := newSampleSet(series)
	srv := httptest.NewServer(rec)
	defer srv.Close()
	config := filepath.Join(dir, "walship.yml")
	if err := os.WriteFile(config, []byte("remote_write:\n"+remoteWrite("receiver", srv.URL, "rw1", "")), 0o644); err != nil {
		return err
	}
	p, err := harness.Start([]string{walship, "replay", "--config.file", config, "--wal.dir", walDir}, dir, logFile)
	if err != nil {
		return err
	}
	select {
	case <-p.Exited():
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
	u := p.Usage()
	res.Exit, res.PeakRSS, res.Seconds = u.ExitCode, u.MaxRSSBytes, u.WallSeconds
	res.Samples = rec.count()
	return nil
}

// sampleSet is the receiver of the hostile runs: RW1 requests of the good
// log's samples, each (series, scrape) kept as one bit, so that the
// harness stays small and the commands' peak RSS is their own (a child's
// maxrss is at least its parent's high-water mark; see BENCHMARKS.md).
type sampleSet struct {
	mu   sync.Mutex
	bits []uint64
	err  error
}

// newSampleSet takes the samples of series series, scrapes up to 1023.
func newSampleSet(series int) *sampleSet {
	return &sampleSet{bits: make([]uint64, series<<10/64)}
}

func (s *sampleSet) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := requestBody(req)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ts := range wr.Timeseries {
		series := -1
		for _, l := range ts.Labels {
			if l.Name == "series" {
				series, _ = strconv.Atoi(l.Value)
			}
		}
		for _, x := range ts.Samples {
			k := series<<10 | int(x.Timestamp/1000)
			if series < 0 || x.Timestamp/1000 >= 1<<10 || k/64 >= len(s.bits) {
				s.err = fmt.Errorf("a sample the log does not hold: series %d at %d", series, x.Timestamp)
				continue
			}
			s.bits[k/64] |= 1 << (k % 64)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// count is how many different samples arrived, -1 after one the log does
// not hold.
func (s *sampleSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return -1
	}
	n := 0
	for _, b := range s.bits {
		n += bits.OnesCount64(b)
	}
	return n
}
