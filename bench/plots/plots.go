// Package plots draws the whole-process benchmark's results with
// gonum/plot: samples per CPU-second and peak RSS against active series,
// and peak RSS against the backlog, one line per sender.
package plots

import (
	"cmp"
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/walship/walship/bench/harness"
)

// colors and glyphs tell the senders apart.
var styles = map[string]struct {
	color color.Color
	shape draw.GlyphDrawer
}{
	"upstream": {color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, draw.CircleGlyph{}},
	"replay":   {color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, draw.SquareGlyph{}},
	"sidecar":  {color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, draw.TriangleGlyph{}},
	// the agents
	"prometheus-agent": {color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, draw.RingGlyph{}},
	"agent":            {color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, draw.PlusGlyph{}},
}

// point is one summary on a plot: x, y and the range of y.
type point struct{ x, y, lo, hi float64 }

// series returns, per sender, the points of the summaries that keep picks,
// with x and y as given, sorted by x.
func series(sums []harness.Summary, keep func(harness.Summary) bool, x func(harness.Summary) float64, y func(harness.Summary) (float64, float64, float64)) map[string][]point {
	out := map[string][]point{}
	for _, s := range sums {
		if !keep(s) || s.Runs == s.Failed {
			continue
		}
		m, lo, hi := y(s)
		out[s.Sender] = append(out[s.Sender], point{x: x(s), y: m, lo: lo, hi: hi})
	}
	for _, ps := range out {
		slices.SortFunc(ps, func(a, b point) int { return cmp.Compare(a.x, b.x) })
	}
	return out
}

// seriesTicks and backlogTicks label the log-scale x axes.
var (
	seriesTicks  = plot.ConstantTicks{{Value: 1e4, Label: "10k"}, {Value: 1e5, Label: "100k"}, {Value: 1e6, Label: "1M"}}
	backlogTicks = plot.ConstantTicks{{Value: 1, Label: "1M"}, {Value: 10, Label: "10M"}, {Value: 100, Label: "100M"}}
)

// draw saves a plot of the points of each sender as path.
func drawPlot(path, title, xLabel, yLabel string, ticks plot.Ticker, bySender map[string][]point) error {
	if len(bySender) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks
	p.Y.Min = 0
	top := 0.0
	for _, ps := range bySender {
		for _, pt := range ps {
			top = max(top, pt.hi, pt.y)
		}
	}
	p.Y.Max = 1.35 * top // room for the legend above the lines
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	senders := make([]string, 0, len(bySender))
	for s := range bySender {
		senders = append(senders, s)
	}
	slices.Sort(senders)
	for _, name := range senders {
		ps := bySender[name]
		xys := make(plotter.XYs, len(ps))
		errs := make(plotter.YErrors, len(ps))
		for i, pt := range ps {
			xys[i] = plotter.XY{X: pt.x, Y: pt.y}
			errs[i] = struct{ Low, High float64 }{pt.y - pt.lo, pt.hi - pt.y}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		st, ok := styles[name]
		if !ok {
			st = styles["replay"]
		}
		line.Color = st.color
		line.Width = vg.Points(1.5)
		points.Color = st.color
		points.Shape = st.shape
		points.Radius = vg.Points(3)
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{xys, errs})
		if err != nil {
			return err
		}
		bars.Color = st.color
		p.Add(line, points, bars)
		p.Legend.Add(name, line, points)
	}
	return p.Save(16*vg.Centimeter, 10*vg.Centimeter, path)
}

// Write draws every plot the summaries allow into dir, in format (svg or
// png), and returns the files written: for each protocol (default queue settings, one
// endpoint), samples per CPU-second and peak RSS against active series
// (shapes of 100 scrapes or fewer per series are excluded from the RSS
// plot only when another shape has the same series), and peak RSS against
// the backlog for shapes of 100,000 series.
func Write(sums []harness.Summary, dir, format string) ([]string, error) {
	var files []string
	for _, proto := range []string{"rw1", "rw2"} {
		cell := harness.Cell{Protocol: proto, Endpoints: 1}
		inCell := func(s harness.Summary) bool { return s.Cell == cell }
		bySeries := func(s harness.Summary) float64 { return float64(s.Series) }
		mainShapes := func(s harness.Summary) bool {
			return inCell(s) && slices.Contains([]string{"10kx1000", "100kx100", "1Mx5"}, s.Shape)
		}
		rate := series(sums, mainShapes, bySeries, func(s harness.Summary) (float64, float64, float64) {
			return s.Rate.Median / 1e6, s.Rate.Min / 1e6, s.Rate.Max / 1e6
		})
		rss := series(sums, mainShapes, bySeries, func(s harness.Summary) (float64, float64, float64) {
			return s.RSSBytes.Median / (1 << 20), s.RSSBytes.Min / (1 << 20), s.RSSBytes.Max / (1 << 20)
		})
		backlog := series(sums, func(s harness.Summary) bool { return inCell(s) && s.Series == 100_000 },
			func(s harness.Summary) float64 { return float64(s.Series) * float64(s.Scrapes) / 1e6 },
			func(s harness.Summary) (float64, float64, float64) {
				return s.RSSBytes.Median / (1 << 20), s.RSSBytes.Min / (1 << 20), s.RSSBytes.Max / (1 << 20)
			})
		name := fmt.Sprintf("%s, default queue_config", map[string]string{"rw1": "Remote-Write 1.0", "rw2": "Remote-Write 2.0"}[proto])
		for _, pl := range []struct {
			file, title, x, y string
			ticks             plot.Ticker
			pts               map[string][]point
		}{
			{"rate-" + proto + "." + format, "Samples per CPU-second, " + name, "active series", "million samples per CPU-second", seriesTicks, rate},
			{"rss-" + proto + "." + format, "Peak RSS, " + name, "active series", "peak RSS (MiB)", seriesTicks, rss},
			{"backlog-" + proto + "." + format, "Peak RSS against the backlog (100,000 series), " + name, "samples in the WAL", "peak RSS (MiB)", backlogTicks, backlog},
		} {
			if distinctX(pl.pts) < 2 {
				continue // nothing to plot against (a log axis needs a range)
			}
			path := filepath.Join(dir, pl.file)
			if err := drawPlot(path, pl.title, pl.x, pl.y, pl.ticks, pl.pts); err != nil {
				return files, fmt.Errorf("%s: %w", path, err)
			}
			files = append(files, path)
		}
	}
	return files, nil
}

// distinctX counts the different x values of the points.
func distinctX(bySender map[string][]point) int {
	xs := map[float64]bool{}
	for _, ps := range bySender {
		for _, p := range ps {
			xs[p.x] = true
		}
	}
	return len(xs)
}
