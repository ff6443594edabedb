// Command upstream-sender ships a WAL with upstream Prometheus's own remote
// storage (storage/remote at v0.316.0: its WAL watcher and QueueManager,
// configured from the remote_write section of a Prometheus configuration
// file), in a process of its own, so that the benchmark measures it as it
// measures the walship binary.
//
// Upstream's watcher ships only what a running server writes after it
// starts: samples older than its start time are skipped, and segments that
// already exist when it starts (but the newest) are read for their series
// only. To make it ship a whole generated WAL honestly, the WAL's samples
// lie in the future (see shape.BaseTime), and the WAL appears as a server
// would write it: the driver starts with only the first segment in
// <storage.path>/wal, waits until the watcher has read a record of it (it
// is then tailing that segment), links the other segments in, and calls
// Notify every 100 ms as a server does after its commits. Every segment is
// then read by the watcher's tailing path, samples included. With
// --wal.live it ships instead the WAL a running server writes in
// <storage.path>/wal, as that server's own remote storage would (the
// reliability harness runs it so). It runs until
// SIGINT or SIGTERM, then closes the storage (flushing its queues), as
// Prometheus does at shutdown.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

func main() {
	app := kingpin.New("upstream-sender", "Ship a WAL with upstream Prometheus's remote storage.")
	configFile := app.Flag("config.file", "Prometheus configuration file (its remote_write section is used).").Required().String()
	dataDir := app.Flag("storage.path", "Data directory; <storage.path>/wal is created and filled.").Required().String()
	source := app.Flag("wal.source", "The WAL to ship (its segments are hard-linked into <storage.path>/wal).").String()
	live := app.Flag("wal.live", "Ship the WAL a running server writes in <storage.path>/wal, as its own remote storage does (no --wal.source).").Bool()
	deadline := app.Flag("storage.remote.flush-deadline", "How long Close waits for queued samples.").Default("1m").Duration()
	kingpin.MustParse(app.Parse(os.Args[1:]))

	// As cmd/prometheus does.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(75)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := promslog.New(&promslog.Config{})
	conf, err := config.LoadFile(*configFile, false, logger)
	switch {
	case err != nil:
	case *live:
		err = runLive(ctx, logger, conf, *dataDir, *deadline)
	case *source == "":
		err = fmt.Errorf("--wal.source or --wal.live is required")
	default:
		err = run(ctx, logger, conf, *dataDir, *source, *deadline)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream-sender:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger, conf *config.Config, dataDir, source string, deadline time.Duration) error {
	first, last, err := wlog.Segments(source)
	if err != nil {
		return err
	}
	walDir := filepath.Join(dataDir, "wal")
	if err := os.MkdirAll(walDir, 0o755); err != nil {
		return err
	}
	link := func(i int) error { return os.Link(wlog.SegmentName(source, i), wlog.SegmentName(walDir, i)) }
	if err := link(first); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	rs, err := open(logger, reg, conf, dataDir, deadline)
	if err != nil {
		return err
	}
	defer rs.Close()
	if err := waitForRecords(ctx, reg, rs); err != nil {
		return err
	}
	for i := first + 1; i <= last; i++ {
		if err := link(i); err != nil {
			return err
		}
	}
	notifyUntil(ctx, rs)
	return nil
}

// runLive ships the WAL a server writes in dataDir/wal, calling Notify
// every 100 ms as the server does after its commits.
func runLive(ctx context.Context, logger *slog.Logger, conf *config.Config, dataDir string, deadline time.Duration) error {
	rs, err := open(logger, prometheus.NewRegistry(), conf, dataDir, deadline)
	if err != nil {
		return err
	}
	defer rs.Close()
	notifyUntil(ctx, rs)
	return nil
}

// open starts upstream's remote storage over dataDir/wal with conf.
func open(logger *slog.Logger, reg prometheus.Registerer, conf *config.Config, dataDir string, deadline time.Duration) (*remote.Storage, error) {
	rs := remote.NewStorage(logger, reg, func() (int64, error) { return 0, nil }, dataDir, deadline, notReady{}, false)
	if err := rs.ApplyConfig(conf); err != nil {
		rs.Close()
		return nil, err
	}
	return rs, nil
}

// notifyUntil calls Notify every 100 ms, as a server does after its
// commits, until ctx ends.
func notifyUntil(ctx context.Context, rs *remote.Storage) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		rs.Notify()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// waitForRecords waits until a watcher has read a record: it has listed
// the segments and is tailing the first one. A tailing watcher reads on
// Notify (or every 15 s).
func waitForRecords(ctx context.Context, reg *prometheus.Registry, rs *remote.Storage) error {
	for {
		rs.Notify()
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		for _, mf := range mfs {
			if mf.GetName() != "prometheus_wal_watcher_records_read_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetCounter().GetValue() > 0 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// notReady is the scrape manager of a server that has not started
// scraping: upstream's metadata watcher then sends nothing (the WAL's
// metadata is the only metadata walship has either).
type notReady struct{}

func (notReady) Get() (*scrape.Manager, error) { return nil, fmt.Errorf("scrape manager not ready") }
