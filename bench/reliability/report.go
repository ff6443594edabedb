package reliability

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WriteMarkdown writes the results as RELIABILITY.md's table: one row per
// scenario and sender, walship's beside upstream's.
func WriteMarkdown(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| scenario | sender | injected | samples written | delivered | lost | reported lost | duplicated (extra deliveries) | catch-up | peak RSS | requests | processes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		if r.Err != "" {
			fmt.Fprintf(w, "| %s | %s | %s | failed: %s ||||||||\n", r.Scenario, r.Sender, r.Injected, strings.ReplaceAll(r.Err, "|", "/"))
			continue
		}
		lost := fmt.Sprintf("**%d**", r.Lost)
		if r.Written > 0 && r.Lost > 0 {
			lost = fmt.Sprintf("**%d (%.1f %%)**", r.Lost, 100*float64(r.Lost)/float64(r.Written))
		}
		catchUp := ""
		if r.CatchUp > 0 {
			catchUp = r.CatchUp.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s | %d | %d (%d) | %s | %d MiB | %d | %d |\n",
			r.Scenario, r.Sender, r.Injected, r.Written, r.Delivered, lost, r.Reported, r.Duplicated, r.Extra, catchUp, r.PeakRSS>>20, r.Requests, r.Runs)
	}
	var notes []string
	for _, r := range rs {
		if r.Unknown > 0 {
			notes = append(notes, fmt.Sprintf("%s, %s: %d samples accepted that the WAL does not hold", r.Scenario, r.Sender, r.Unknown))
		}
		if r.Orphaned > 0 {
			notes = append(notes, fmt.Sprintf("%s, %s: %d samples of the WAL whose series record is unreadable (in damage) or was never written (a commit that failed, not logged again), neither delivered nor lost", r.Scenario, r.Sender, r.Orphaned))
		}
		if r.KilledInCheckpoint > 0 {
			notes = append(notes, fmt.Sprintf("%s, %s: %d of the kills left a checkpoint unfinished", r.Scenario, r.Sender, r.KilledInCheckpoint))
		}
		if r.KilledInDeletion > 0 {
			notes = append(notes, fmt.Sprintf("%s, %s: %d of the kills left segments a finished checkpoint covers", r.Scenario, r.Sender, r.KilledInDeletion))
		}
		for _, d := range r.Damaged {
			notes = append(notes, fmt.Sprintf("%s, %s: damaged %s", r.Scenario, r.Sender, d))
		}
		if r.CommitsFailed > 0 {
			while := "the disk was full"
			if r.Scenario == "fs-faults" {
				while = "the file system failed"
			}
			notes = append(notes, fmt.Sprintf("%s, %s: %d commits failed while %s (their scrapes are not in the WAL)", r.Scenario, r.Sender, r.CommitsFailed, while))
		}
		if len(r.Refused) > 0 {
			var kinds []string
			for _, k := range slices.Sorted(maps.Keys(r.Refused)) {
				kinds = append(kinds, fmt.Sprintf("%s %d", k, r.Refused[k]))
			}
			notes = append(notes, fmt.Sprintf("%s, %s: file operations refused: %s", r.Scenario, r.Sender, strings.Join(kinds, ", ")))
		}
		if len(r.Damaged) > 0 {
			notes = append(notes, fmt.Sprintf("%s, %s: lost in the damaged segments %d, of them in records a page or more after the damage %d", r.Scenario, r.Sender, r.LostDamaged, r.LostAfterDamage))
		}
		if len(r.RSSByMinute) > 1 {
			mib := make([]string, len(r.RSSByMinute))
			for i, v := range r.RSSByMinute {
				mib[i] = strconv.FormatInt(v, 10)
			}
			notes = append(notes, fmt.Sprintf("%s, %s: RSS at the end of each minute of it, MiB: %s", r.Scenario, r.Sender, strings.Join(mib, " ")))
		}
		if len(r.Faults) > 0 && r.Scenario == "flap" {
			var kinds []string
			for _, k := range slices.Sorted(maps.Keys(r.Faults)) {
				kinds = append(kinds, fmt.Sprintf("%s %d", k, r.Faults[k]))
			}
			notes = append(notes, fmt.Sprintf("%s, %s: answers %s", r.Scenario, r.Sender, strings.Join(kinds, ", ")))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}
