package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/walship/walship/bench/reliability"
)

// hostileFlags are the flags of `e2e hostile`.
type hostileFlags struct {
	cmd  *kingpin.CmdClause
	o    reliability.HostileOptions
	size units.Base2Bytes
	out  *string
}

// hostileCommand registers `e2e hostile`: hostile WAL segments at
// production size read by walship inspect and replay (see
// reliability.RunHostile). Its defaults are `make reliability`'s.
func hostileCommand(app *kingpin.Application) *hostileFlags {
	f := &hostileFlags{cmd: app.Command("hostile", "Read logs holding a hostile segment (random bytes, zeros, a record that never ends) with walship inspect and replay: every good sample shipped, the damage reported, no panic (RELIABILITY.md).")}
	f.cmd.Flag("walship", "The walship binary.").Default("bin/walship").StringVar(&f.o.Walship)
	f.cmd.Flag("work", "Work directory (a log at a time, the hostile segment's size and more).").Default("bench/work/reliability").StringVar(&f.o.Work)
	f.cmd.Flag("size", "Size of the hostile segment (256MiB: the largest segment Prometheus cuts).").Default("256MiB").BytesVar(&f.size)
	f.cmd.Flag("series", "Series of the good log.").Default("10000").IntVar(&f.o.Series)
	f.cmd.Flag("records", "Samples records (one sample per series) in the good log's first segment.").Default("100").IntVar(&f.o.Records)
	f.out = f.cmd.Flag("out", "Results file (JSON lines); the Markdown table goes to standard output.").Default("bench/work/reliability/results-hostile.jsonl").String()
	return f
}

// run reads every hostile log with both commands and fails when one lost a
// good sample or exited otherwise than documented.
func (f *hostileFlags) run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o := f.o
	o.Size = int64(f.size)
	if err := absolute(&o.Walship, &o.Work); err != nil {
		return err
	}
	if err := lockWork(o.Work); err != nil {
		return err
	}
	results, err := reliability.RunHostile(ctx, o)
	if err != nil {
		return err
	}
	out, err := createResults(*f.out)
	if err != nil {
		return err
	}
	defer out.Close()
	fmt.Println("| hostile segment | size | command | good samples | shipped (replay) or counted (inspect) | exit status (documented) | peak RSS | seconds |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	var failed error
	for _, r := range results {
		if err := json.NewEncoder(out).Encode(r); err != nil {
			return err
		}
		fmt.Printf("| %s | %d MiB | %s | %d | %d | %d (%d) | %d MiB | %.1f |\n", r.Case, r.Size>>20, r.Command, r.Want, r.Samples, r.Exit, r.WantExit, r.PeakRSS>>20, r.Seconds)
		if r.Err != "" && failed == nil {
			failed = fmt.Errorf("%s, %s: %s", r.Case, r.Command, r.Err)
		}
	}
	return failed
}
