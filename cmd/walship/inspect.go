package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kingpin/v2"

	"github.com/walship/walship/internal/inspect"
	"github.com/walship/walship/wal"
)

type inspectCommand struct {
	cmd    *kingpin.CmdClause
	walDir string
	json   bool
}

func newInspectCommand(app *kingpin.Application) *inspectCommand {
	c := &inspectCommand{}
	c.cmd = app.Command("inspect", "Count the records, series and samples of a WAL directory and report every corruption. Exits 1 when the WAL is damaged.")
	c.cmd.Flag("wal.dir", "WAL directory to inspect (a Prometheus data/wal or data-agent/wal directory).").Required().StringVar(&c.walDir)
	c.cmd.Flag("json", "Print one JSON object instead of tables.").BoolVar(&c.json)
	return c
}

func (c *inspectCommand) run(stdout, stderr io.Writer) int {
	if err := checkWALDir(c.walDir); err != nil {
		fmt.Fprintf(stderr, "walship: %v\n", err)
		return exitError
	}
	rep, err := inspect.Dir(wal.OS, c.walDir)
	if err != nil {
		fmt.Fprintf(stderr, "walship: %v\n", err)
		return exitError
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "walship: %v\n", err)
			return exitError
		}
	} else {
		printReport(stdout, rep)
	}
	if len(rep.Corruptions) > 0 {
		return exitCorrupt
	}
	return exitOK
}

func printReport(w io.Writer, rep *inspect.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "segment\tbytes\trecords\tseries\tsamples\thistograms\texemplars\tmetadata\tmin_time\tmax_time\t")
	for _, s := range rep.Segments {
		name := wal.SegmentName(s.Index)
		if s.Checkpoint != "" {
			name = s.Checkpoint + "/" + name
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, s.Size, total(s.Records),
			s.Series, s.Samples, s.Histograms, s.Exemplars, s.Metadata, s.MinTime, s.MaxTime)
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", total(rep.Records),
		rep.Series, rep.Samples, rep.Histograms, rep.Exemplars, rep.Metadata, rep.MinTime, rep.MaxTime)
	tw.Flush()

	fmt.Fprintf(w, "\nrecords by type: %s\n", byType(rep.Records))
	if len(rep.Corruptions) == 0 {
		fmt.Fprintln(w, "corruptions: none")
		return
	}
	fmt.Fprintf(w, "corruptions: %d\n", len(rep.Corruptions))
	for _, c := range rep.Corruptions {
		where := wal.SegmentName(c.Segment)
		if c.Checkpoint != "" {
			where = c.Checkpoint + "/" + where
		}
		fmt.Fprintf(w, "  segment %s offset %d: %s\n", where, c.Offset, c.Error)
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func byType(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
