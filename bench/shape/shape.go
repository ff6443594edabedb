// Package shape says what a benchmark WAL holds: how many series, how many
// scrapes, the series' Kubernetes-like labels, and every sample's timestamp
// and value. The WAL generator and the receiver both use it: the generator
// writes what a shape says, the receiver checks what arrived against the sum
// the generator computed (see Sum).
package shape

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Shape is one benchmark input: Series series scraped Scrapes times, one
// sample per series and scrape.
type Shape struct {
	Name    string
	Series  int
	Scrapes int
}

// The shapes the issue names, and a small one for quick runs and CI.
var (
	Small  = Shape{Name: "10kx100", Series: 10_000, Scrapes: 100}
	K100   = Shape{Name: "100kx100", Series: 100_000, Scrapes: 100}
	M1     = Shape{Name: "1Mx5", Series: 1_000_000, Scrapes: 5}
	K10    = Shape{Name: "10kx1000", Series: 10_000, Scrapes: 1000}
	All    = []Shape{Small, K100, M1, K10}
	ByName = map[string]Shape{}
)

func init() {
	for _, s := range All {
		ByName[s.Name] = s
	}
}

// Parse returns the shape called name, or one written SERIESxSCRAPES,
// each a number with an optional k or M ("50kx20").
func Parse(name string) (Shape, error) {
	if s, ok := ByName[name]; ok {
		return s, nil
	}
	bad := fmt.Errorf("unknown shape %q (known: 10kx100, 100kx100, 1Mx5, 10kx1000, or SERIESxSCRAPES such as 50kx20)", name)
	a, b, ok := strings.Cut(name, "x")
	if !ok {
		return Shape{}, bad
	}
	series, err1 := count(a)
	scrapes, err2 := count(b)
	if err1 != nil || err2 != nil || series <= 0 || scrapes <= 0 {
		return Shape{}, bad
	}
	return Shape{Name: name, Series: series, Scrapes: scrapes}, nil
}

// count parses a number with an optional k (thousand) or M (million).
func count(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"):
		s, mult = s[:len(s)-1], 1_000
	case strings.HasSuffix(s, "M"):
		s, mult = s[:len(s)-1], 1_000_000
	}
	n, err := strconv.Atoi(s)
	return n * mult, err
}

// Samples is how many samples the shape's WAL holds.
func (s Shape) Samples() int64 { return int64(s.Series) * int64(s.Scrapes) }

// The layout of the series: a container exposes SeriesPerContainer series
// (one per metric name), a pod has two containers, a node runs PodsPerNode
// pods and is one scrape target (kubelet's cAdvisor endpoint), so a target
// is 1500 series and one WAL commit per scrape.
const (
	SeriesPerContainer = 25
	ContainersPerPod   = 2
	PodsPerNode        = 30
	SeriesPerTarget    = SeriesPerContainer * ContainersPerPod * PodsPerNode
)

// Targets is how many scrape targets the shape's series belong to.
func (s Shape) Targets() int { return (s.Series + SeriesPerTarget - 1) / SeriesPerTarget }

// BaseTime is the first scrape's timestamp: 2100-01-01. Upstream's watcher
// ships only samples newer than its own start, so the WAL's samples lie
// in the future; nothing else reads them as times.
var BaseTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// Interval is the scrape interval, in milliseconds.
const Interval = 15_000

// Timestamp is the timestamp of target's scrape number scrape: targets are
// spread over the interval, as a Prometheus server spreads them.
func Timestamp(target, scrape int) int64 { return TimestampFrom(BaseTime, target, scrape) }

// TimestampFrom is Timestamp with the first scrape at base instead of
// BaseTime: the agents' targets serve timestamps near the time of the run,
// since a scrape refuses samples more than ten minutes ahead.
func TimestampFrom(base int64, target, scrape int) int64 {
	return base + int64(scrape)*Interval + int64(target*7919%Interval)
}

// SeriesHashes returns the SeriesHash of each of s's series.
func (s Shape) SeriesHashes() []uint64 {
	out := make([]uint64, s.Series)
	var b labels.ScratchBuilder
	for i := range out {
		out[i] = SeriesHash(Labels(&b, i))
	}
	return out
}

// SumFrom is the Sum of s's samples with the first scrape at base (see
// TimestampFrom), given the series' hashes (SeriesHashes).
func (s Shape) SumFrom(hashes []uint64, base int64) Sum {
	var sum Sum
	for scrape := range s.Scrapes {
		for i, h := range hashes {
			sum.Add(h, TimestampFrom(base, i/SeriesPerTarget, scrape), Value(i, scrape))
		}
	}
	return sum
}

// Value is series i's sample at scrape number scrape: a counter.
func Value(i, scrape int) float64 {
	return float64(scrape*(i%97+1)) + float64(i%1000)/8
}

var metricNames = [SeriesPerContainer]string{
	"container_cpu_usage_seconds_total", "container_cpu_user_seconds_total",
	"container_cpu_system_seconds_total", "container_cpu_cfs_periods_total",
	"container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total",
	"container_memory_usage_bytes", "container_memory_working_set_bytes",
	"container_memory_rss", "container_memory_cache", "container_memory_swap",
	"container_memory_failcnt", "container_memory_mapped_file",
	"container_network_receive_bytes_total", "container_network_transmit_bytes_total",
	"container_network_receive_packets_total", "container_network_transmit_packets_total",
	"container_fs_reads_bytes_total", "container_fs_writes_bytes_total",
	"container_fs_reads_total", "container_fs_writes_total", "container_fs_usage_bytes",
	"container_file_descriptors", "container_threads", "container_last_seen",
}

// Labels builds series i's labels into b: about 250 bytes of names and
// values shaped like kubelet's cAdvisor metrics. Most strings repeat
// (metric names, job, namespaces); a container's id and a pod's name are
// shared by its 25 or 50 series; none is unique to one series.
func Labels(b *labels.ScratchBuilder, i int) labels.Labels {
	container := i / SeriesPerContainer
	pod := container / ContainersPerPod
	node := pod / PodsPerNode
	ns := pod % 40
	app := pod % 50
	b.Reset()
	b.Add("__name__", metricNames[i%SeriesPerContainer])
	b.Add("container", [ContainersPerPod]string{"app", "istio-proxy"}[container%ContainersPerPod])
	b.Add("endpoint", "https-metrics")
	b.Add("id", fmt.Sprintf("/kubepods/burstable/pod%08x-%04x/%016x", pod*2654435761%(1<<32), pod%65536, uint64(container)*0x9E3779B97F4A7C15))
	b.Add("instance", "10.0."+strconv.Itoa(node/256)+"."+strconv.Itoa(node%256)+":10250")
	b.Add("job", "kubelet")
	b.Add("metrics_path", "/metrics/cadvisor")
	b.Add("namespace", "team-"+strconv.Itoa(ns))
	b.Add("node", "ip-10-0-"+strconv.Itoa(node/256)+"-"+strconv.Itoa(node%256)+".ec2.internal")
	b.Add("pod", fmt.Sprintf("app-%d-%08x-%05d", app, pod*40503%(1<<32), pod%100000))
	b.Add("service", "kubelet")
	b.Sort()
	return b.Labels()
}
