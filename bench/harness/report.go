package harness

import (
	"fmt"
	"io"
	"slices"
)

// Summary is one sender's runs in one shape and cell, reduced to medians.
type Summary struct {
	Shape            string
	Series, Scrapes  int
	Cell             Cell
	Sender           string
	Runs             int
	Failed           int
	Rate             Spread // samples per CPU-second
	RSSBytes         Spread // peak RSS
	ShipSeconds      Spread
	WireBytes        Spread
	RateRatio        float64 // ÷ the baseline's median, same shape and cell; 0 without one
	RSSRatio         float64
	UpstreamRate     float64
	UpstreamRSSBytes float64
}

// Spread is a median with the lowest and highest value.
type Spread struct{ Median, Min, Max float64 }

func spread(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	v = slices.Clone(v)
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Spread{Median: m, Min: v[0], Max: v[len(v)-1]}
}

// Summarise groups results by shape, cell and sender, in the order they
// first appear, and relates each walship sender to its upstream
// baseline's runs (Sender.Baseline) of the same shape and cell. Failed runs are counted, not measured.
func Summarise(results []Result) []Summary {
	type key struct {
		shape  string
		cell   Cell
		sender string
	}
	var order []key
	groups := map[key][]Result{}
	for _, r := range results {
		k := key{r.Shape, r.Cell, r.Sender}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []Summary
	for _, k := range order {
		rs := groups[k]
		s := Summary{Shape: k.shape, Series: rs[0].Series, Scrapes: rs[0].Scrapes, Cell: k.cell, Sender: k.sender}
		var rate, rss, ship, wire []float64
		for _, r := range rs {
			s.Runs++
			if r.Error != "" {
				s.Failed++
				continue
			}
			rate = append(rate, r.SamplesPerCPUSecond())
			rss = append(rss, float64(r.Usage.MaxRSSBytes))
			ship = append(ship, r.ShipSeconds)
			wire = append(wire, float64(r.WireBytes))
		}
		s.Rate, s.RSSBytes, s.ShipSeconds, s.WireBytes = spread(rate), spread(rss), spread(ship), spread(wire)
		out = append(out, s)
	}
	for i := range out {
		for _, u := range out {
			if u.Sender == baseline(out[i].Sender) && u.Shape == out[i].Shape && u.Cell == out[i].Cell && u.Rate.Median > 0 {
				out[i].UpstreamRate, out[i].UpstreamRSSBytes = u.Rate.Median, u.RSSBytes.Median
				out[i].RateRatio = out[i].Rate.Median / u.Rate.Median
				out[i].RSSRatio = out[i].RSSBytes.Median / u.RSSBytes.Median
			}
		}
	}
	return out
}

// WriteMarkdown writes the summaries as one Markdown table.
func WriteMarkdown(w io.Writer, sums []Summary) {
	fmt.Fprintln(w, "| WAL | queue | sender | runs | samples per CPU-second (median, range) | ÷ upstream | peak RSS MiB (median, range) | ÷ upstream | shipped in s | MiB on the wire |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range sums {
		runs := fmt.Sprint(s.Runs)
		if s.Failed > 0 {
			runs = fmt.Sprintf("%d (%d failed)", s.Runs, s.Failed)
		}
		rateRatio, rssRatio := "", ""
		if baseline(s.Sender) != "" && s.RateRatio > 0 {
			rateRatio = fmt.Sprintf("**%.2fx**", s.RateRatio)
			rssRatio = fmt.Sprintf("**%.2fx**", s.RSSRatio)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f M (%.2f–%.2f) | %s | %.0f (%.0f–%.0f) | %s | %.1f | %.1f |\n",
			s.Shape, s.Cell, s.Sender, runs,
			s.Rate.Median/1e6, s.Rate.Min/1e6, s.Rate.Max/1e6, rateRatio,
			s.RSSBytes.Median/(1<<20), s.RSSBytes.Min/(1<<20), s.RSSBytes.Max/(1<<20), rssRatio,
			s.ShipSeconds.Median, s.WireBytes.Median/(1<<20))
	}
}

// baseline returns the name of the sender the named one is compared
// with, "" for upstream's own (or an unknown name).
func baseline(sender string) string { return senders[sender].Baseline }
