package remote_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/remote"
)

// A Prometheus fork wires walship where cmd/prometheus wires upstream's
// remote storage: the same constructor arguments, the same fanout, the same
// write notifications. The remote_write section of the ordinary YAML
// configuration picks the endpoints.
func Example() {
	// An endpoint to ship to (in real life: Mimir, Thanos, another
	// Prometheus...); this one counts what it receives.
	var receiver testkit.Receiver
	endpoint := httptest.NewServer(&receiver)
	defer endpoint.Close()
	received := func() int { return receiver.Accepted().Samples }

	cfg, err := config.Load(fmt.Sprintf(`
global:
  external_labels: {replica: a}
remote_write:
  - url: %s/api/v1/write
    name: example
    queue_config: {batch_send_deadline: 100ms}
`, endpoint.URL), slog.Default())
	if err != nil {
		panic(err)
	}

	dataDir, _ := os.MkdirTemp("", "walship-example")
	defer os.RemoveAll(dataDir)
	logger := slog.New(slog.DiscardHandler)

	// What cmd/prometheus does, with remote.NewStorage from walship.
	localStorage, err := tsdb.Open(dataDir, logger, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		panic(err)
	}
	defer localStorage.Close()
	remoteStorage := remote.NewStorage(logger, prometheus.NewRegistry(), localStorage.StartTime, dataDir, time.Minute, nil, false)
	defer remoteStorage.Close()
	fanoutStorage := storage.NewFanout(logger, localStorage, remoteStorage)
	localStorage.SetWriteNotified(remoteStorage)
	if err := remoteStorage.ApplyConfig(cfg); err != nil {
		panic(err)
	}

	// Scrapes append through the fanout; walship reads them from data/wal.
	for i := range 100 {
		app := fanoutStorage.Appender(context.Background())
		app.Append(0, labels.FromStrings("__name__", "up", "instance", fmt.Sprint(i)), time.Now().UnixMilli(), 1)
		if err := app.Commit(); err != nil {
			panic(err)
		}
	}

	for deadline := time.Now().Add(10 * time.Second); received() < 100 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // an example's wait; tests use testkit.Eventually
	}
	fmt.Println("samples received:", received())
	// Output: samples received: 100
}
