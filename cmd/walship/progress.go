package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// shipCounts are what the remote-write queues did, summed over endpoints,
// as the registry's prometheus_remote_storage_* metrics count them.
type shipCounts struct {
	samples, histograms, exemplars float64 // sent and acknowledged
	bytes                          float64 // on the wire, compressed
	failed                         float64 // samples, histograms and exemplars refused for good
	dropped                        float64 // dropped before sending (relabelling, unknown series, too old)
	unknown                        float64 // of dropped: their series was not in the WAL when they were read
	damaged                        float64 // bytes of the WAL passed over as damaged, by the reader that met most
}

// sent is every sample, histogram and exemplar the endpoints took.
func (c shipCounts) sent() float64 { return c.samples + c.histograms + c.exemplars }

// readCounts gathers g and sums the queue counters over every endpoint.
func readCounts(g prometheus.Gatherer) shipCounts {
	var c shipCounts
	families, err := g.Gather()
	if err != nil && len(families) == 0 {
		return c
	}
	for _, mf := range families {
		var dst *float64
		switch mf.GetName() {
		case "prometheus_remote_storage_samples_total":
			dst = &c.samples
		case "prometheus_remote_storage_histograms_total":
			dst = &c.histograms
		case "prometheus_remote_storage_exemplars_total":
			dst = &c.exemplars
		case "prometheus_remote_storage_bytes_total":
			dst = &c.bytes
		case "prometheus_remote_storage_samples_failed_total",
			"prometheus_remote_storage_histograms_failed_total",
			"prometheus_remote_storage_exemplars_failed_total":
			dst = &c.failed
		case "prometheus_remote_storage_samples_dropped_total",
			"prometheus_remote_storage_histograms_dropped_total",
			"prometheus_remote_storage_exemplars_dropped_total":
			dst = &c.dropped
		case "walship_wal_watcher_skipped_bytes_total":
			// Each reader of the WAL meets the same damage: the most any met.
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" && l.GetValue() == "corruption" {
						c.damaged = max(c.damaged, m.GetCounter().GetValue())
					}
				}
			}
			continue
		default:
			continue
		}
		*dst += sumFamily(mf)
		if dst == &c.dropped {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" && l.GetValue() == "unintentionally_dropped_series" {
						c.unknown += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return c
}

func sumFamily(mf *dto.MetricFamily) float64 {
	var sum float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

// maxCounts keeps the highest value seen of every count: an endpoint's
// series disappear from the registry when it stops.
func maxCounts(a, b shipCounts) shipCounts {
	m := func(x, y float64) float64 { return max(x, y) }
	return shipCounts{
		samples: m(a.samples, b.samples), histograms: m(a.histograms, b.histograms),
		exemplars: m(a.exemplars, b.exemplars), bytes: m(a.bytes, b.bytes),
		failed: m(a.failed, b.failed), dropped: m(a.dropped, b.dropped),
		unknown: m(a.unknown, b.unknown), damaged: m(a.damaged, b.damaged),
	}
}

// progressBar draws one line, rewritten in place, on a terminal.
type progressBar struct {
	w     io.Writer
	total float64 // 0 when unknown
	start time.Time
	width int
}

func (p *progressBar) draw(c shipCounts) {
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = c.sent() / elapsed
	}
	line := fmt.Sprintf("%s sent, %s on the wire, %s/s", humanCount(c.sent()), humanBytes(c.bytes), humanCount(rate))
	if p.total > 0 {
		frac := min(c.sent()/p.total, 1)
		n := int(frac * float64(p.width))
		line = fmt.Sprintf("[%s%s] %3.0f%% %s", strings.Repeat("=", n), strings.Repeat(" ", p.width-n), frac*100, line)
	}
	fmt.Fprintf(p.w, "\r%s\033[K", line)
}

func (p *progressBar) finish() { fmt.Fprint(p.w, "\r\033[K") }

func humanCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func humanBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.2f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}
