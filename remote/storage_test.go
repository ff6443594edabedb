package remote_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/remote"
)

// What cmd/prometheus needs of its remote storage, checked at compile time.
var (
	_ storage.Storage                                = (*remote.Storage)(nil)
	_ wlog.WriteNotified                             = (*remote.Storage)(nil)
	_ storage.Appendable                             = (*remote.Storage)(nil)
	_ interface{ ApplyConfig(*config.Config) error } = (*remote.Storage)(nil)
)

func remoteWriteConfig(t *testing.T, name, endpoint string) *config.RemoteWriteConfig {
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	rw := config.DefaultRemoteWriteConfig
	rw.Name = name
	rw.URL = &commoncfg.URL{URL: u}
	rw.QueueConfig.BatchSendDeadline = model.Duration(20 * time.Millisecond)
	rw.QueueConfig.MinBackoff = model.Duration(time.Millisecond)
	rw.QueueConfig.MaxBackoff = model.Duration(50 * time.Millisecond)
	return &rw
}

func configWith(rws ...*config.RemoteWriteConfig) *config.Config {
	c := config.DefaultConfig
	c.RemoteWriteConfigs = rws
	return &c
}

// TestStorageWiredLikePrometheus wires walship exactly as cmd/prometheus
// wires upstream's remote storage — NewStorage with the same arguments,
// upstream's TSDB in server mode, the fanout storage over both, the TSDB's
// write notifications going to the remote storage — and appends through
// the fanout: every sample reaches the receiver, read from the TSDB's own
// wal/ directory.
func TestStorageWiredLikePrometheus(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()

	db, err := tsdb.Open(dir, logger, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	defer db.Close()
	rs := remote.NewStorage(logger, reg, db.StartTime, dir, time.Minute, nil, false)
	defer rs.Close()
	fanout := storage.NewFanout(logger, db, rs)
	db.SetWriteNotified(rs)

	recv := testkit.NewReceiver(t)
	require.NoError(t, rs.ApplyConfig(configWith(remoteWriteConfig(t, "drop-in", recv.URL))))

	const series, scrapes = 50, 40
	for s := 0; s < scrapes; s++ {
		appendScrape(t, fanout, series, s)
	}
	require.Eventually(t, func() bool { return recv.Distinct() == series*scrapes }, 20*time.Second, 5*time.Millisecond)
	require.Equal(t, float64(series*scrapes), testkit.Metric(t, reg, "prometheus_remote_storage_samples_in_total"))
	require.Equal(t, float64(scrapes-1), testkit.Metric(t, reg, "prometheus_remote_storage_highest_timestamp_in_seconds"))
	require.Eventually(t, func() bool { return rs.LowestSentTimestamp() == int64((scrapes-1)*1000) }, 10*time.Second, time.Millisecond,
		"the newest sample sent is the lowest across endpoints")
	require.NoError(t, rs.Close())
	for k, n := range recv.Seen() {
		require.Equal(t, 1, n, "%s sent more than once", k)
	}
}

// appendScrape commits one scrape of series series at second s to app.
func appendScrape(t *testing.T, app storage.Appendable, series, s int) {
	t.Helper()
	a := app.Appender(context.Background())
	for i := 0; i < series; i++ {
		_, err := a.Append(0, labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), int64(s)*1000, float64(s))
		require.NoError(t, err)
	}
	require.NoError(t, a.Commit())
}

// TestStorageReloadRestartsOnlyChanged: two endpoints ship one WAL; a
// reload changes one of them. The other is not restarted (its queue
// metrics keep counting from where they were); the changed one resumes at
// its saved position. Both receive every sample, and a restart duplicates
// at most what was in flight.
func TestStorageReloadRestartsOnlyChanged(t *testing.T) {
	dir := t.TempDir()
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	defer db.Close()
	reg := prometheus.NewRegistry()
	rs := remote.New(remote.Options{WALDir: filepath.Join(dir, "wal"), PositionsDir: filepath.Join(t.TempDir(), "positions"), Registerer: reg})
	defer rs.Close()
	db.SetWriteNotified(rs)

	a, b := testkit.NewReceiver(t), testkit.NewReceiver(t)
	cfgA, cfgB := remoteWriteConfig(t, "a", a.URL), remoteWriteConfig(t, "b", b.URL)
	require.NoError(t, rs.ApplyConfig(configWith(cfgA, cfgB)))

	const series = 20
	scrape := func(s int) { appendScrape(t, db, series, s) }
	for s := 0; s < 30; s++ {
		scrape(s)
	}
	require.Eventually(t, func() bool { return a.Distinct() == 30*series && b.Distinct() == 30*series }, 20*time.Second, 5*time.Millisecond)

	sentA := func() float64 {
		return testkit.Metric(t, reg, "prometheus_remote_storage_samples_total", "remote_name", "a")
	}
	require.Eventually(t, func() bool { return sentA() == 30*series }, 10*time.Second, time.Millisecond)
	before := sentA()

	// b gets a new batch size: only b restarts.
	cfgB2 := *cfgB
	cfgB2.QueueConfig.MaxSamplesPerSend = 7
	require.NoError(t, rs.ApplyConfig(configWith(cfgA, &cfgB2)))
	require.Equal(t, before, sentA(), "a kept its counters: it was not restarted")
	for s := 30; s < 60; s++ {
		scrape(s)
	}
	require.Eventually(t, func() bool { return a.Distinct() == 60*series && b.Distinct() == 60*series }, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return sentA() == 60*series }, 10*time.Second, time.Millisecond)
	for _, r := range []*testkit.Receiver{a, b} {
		for k, n := range r.Seen() {
			require.Equal(t, 1, n, "%s sent more than once", k)
		}
	}

	// An invalid entry leaves everything as it was.
	bad := *cfgA
	bad.SigV4Config = nil
	bad.URL = &commoncfg.URL{URL: &url.URL{}}
	require.Error(t, rs.ApplyConfig(configWith(&bad, cfgB)))
	scrape(60)
	require.Eventually(t, func() bool { return a.Distinct() == 61*series }, 20*time.Second, 5*time.Millisecond)
}

// TestStorageCloseSavesWhatFlushSent: Close flushes and saves the position
// the flush reached, so a new Storage over the same positions sends only
// what was written while none ran — nothing twice, nothing lost.
func TestStorageCloseSavesWhatFlushSent(t *testing.T) {
	dir := t.TempDir()
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	defer db.Close()
	opts := remote.Options{WALDir: filepath.Join(dir, "wal"), PositionsDir: filepath.Join(t.TempDir(), "positions")}
	recv := testkit.NewReceiver(t)
	cfg := configWith(remoteWriteConfig(t, "", recv.URL)) // unnamed: keyed by URL

	const series = 20
	scrape := func(s int) { appendScrape(t, db, series, s) }

	rs := remote.New(opts)
	require.NoError(t, rs.ApplyConfig(cfg))
	for s := 0; s < 30; s++ {
		scrape(s)
	}
	rs.Notify()
	require.Eventually(t, func() bool { return recv.Distinct() == 30*series }, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, rs.Close())
	for _, pos := range rs.AckedPositions() {
		require.Fail(t, "a closed storage has no endpoints", "%v", pos)
	}

	for s := 30; s < 60; s++ {
		scrape(s) // while nothing ships
	}
	rs = remote.New(opts)
	defer rs.Close()
	require.NoError(t, rs.ApplyConfig(cfg))
	require.Eventually(t, func() bool { return recv.Distinct() == 60*series }, 20*time.Second, 5*time.Millisecond)
	acked := rs.AckedPositions()
	require.Len(t, acked, 1)
	for k, n := range recv.Seen() {
		require.Equal(t, 1, n, "%s sent more than once", k)
	}
}

// TestStorageNotifyDoesNotWaitForReload: a reload whose old entry flushes
// against a dead endpoint takes the whole flush deadline; meanwhile
// Notify (the TSDB's commit path) and AckedPositions (the agent storage's
// truncation) answer at once.
func TestStorageNotifyDoesNotWaitForReload(t *testing.T) {
	dir := t.TempDir()
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	defer db.Close()
	reg := prometheus.NewRegistry()
	rs := remote.New(remote.Options{WALDir: filepath.Join(dir, "wal"), FlushDeadline: time.Second, Registerer: reg})
	defer rs.Close()

	dead := testkit.NewReceiver(t)
	dead.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	cfg := remoteWriteConfig(t, "a", dead.URL)
	require.NoError(t, rs.ApplyConfig(configWith(cfg)))
	for s := 0; s < 5; s++ {
		appendScrape(t, db, 10, s)
	}
	rs.Notify()
	require.Eventually(t, func() bool {
		return testkit.Metric(t, reg, "prometheus_remote_storage_samples_retried_total", "remote_name", "a") > 0
	},
		5*time.Second, time.Millisecond, "the queue holds samples it cannot send")

	changed := *cfg
	changed.QueueConfig.MaxSamplesPerSend = 3
	reloaded := make(chan error, 1)
	go func() { reloaded <- rs.ApplyConfig(configWith(&changed)) }()
	tick := time.NewTicker(20 * time.Millisecond) // pacing, not synchronisation
	defer tick.Stop()
	for range 20 {
		<-tick.C
		answered := make(chan struct{})
		go func() { rs.Notify(); rs.AckedPositions(); close(answered) }()
		select {
		case <-answered:
		case err := <-reloaded:
			t.Fatalf("Notify waited for the reload (%v)", err)
		}
	}
	require.NoError(t, <-reloaded)
}

// TestStorageRefusesEntryThatCannotStart: an entry Prometheus's config
// accepts but the queue cannot run (batch_send_deadline: 0) fails the
// reload, and the running entry keeps running and protecting its data.
func TestStorageRefusesEntryThatCannotStart(t *testing.T) {
	recv := testkit.NewReceiver(t)
	rs := remote.New(remote.Options{WALDir: t.TempDir(), PositionsDir: t.TempDir()})
	defer rs.Close()
	good := remoteWriteConfig(t, "a", recv.URL)
	require.NoError(t, rs.ApplyConfig(configWith(good)))
	require.Zero(t, rs.LowestSentTimestamp(), "callable at once after ApplyConfig")

	bad := *good
	bad.QueueConfig.BatchSendDeadline = 0
	require.ErrorContains(t, rs.ApplyConfig(configWith(&bad)), "batch_send_deadline")
	require.Contains(t, rs.AckedPositions(), "a", "the running entry is still there")
}

// TestStorageStopAtEndTakesOneConfig: a replay's storage refuses a second
// configuration instead of reporting Done for the first one's entries.
func TestStorageStopAtEndTakesOneConfig(t *testing.T) {
	recv := testkit.NewReceiver(t)
	rs := remote.New(remote.Options{WALDir: t.TempDir(), StopAtEnd: true})
	defer rs.Close()
	cfg := configWith(remoteWriteConfig(t, "a", recv.URL))
	require.NoError(t, rs.ApplyConfig(cfg))
	<-rs.Done() // an empty log is shipped at once
	require.Error(t, rs.ApplyConfig(cfg))
}

// TestStorageUnnamedEntriesSharingURL: two unnamed entries send to the same
// URL for two tenants (told apart by a header). Tenant b's endpoint is down
// while a ships 30 scrapes, so their saved positions differ when the
// storage closes. Reopened with the entries in the other order, each
// resumes from its own position: b gets everything (keyed by the order,
// b took a's position and lost 30 scrapes), and a gets nothing twice.
func TestStorageUnnamedEntriesSharingURL(t *testing.T) {
	dir := t.TempDir()
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	defer db.Close()
	opts := remote.Options{WALDir: filepath.Join(dir, "wal"), PositionsDir: filepath.Join(t.TempDir(), "positions"), FlushDeadline: 100 * time.Millisecond}

	tenants := map[string]*testkit.Receiver{"a": testkit.NewReceiver(t), "b": testkit.NewReceiver(t)}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tenants[req.Header.Get("X-Tenant")].ServeHTTP(w, req)
	}))
	defer front.Close()
	entry := func(tenant string) *config.RemoteWriteConfig {
		rw := remoteWriteConfig(t, "", front.URL)
		rw.Headers = map[string]string{"X-Tenant": tenant}
		return rw
	}
	a, b := tenants["a"], tenants["b"]

	const series = 20
	scrape := func(s int) { appendScrape(t, db, series, s) }
	b.Respond(testkit.Refuse(http.StatusServiceUnavailable))
	rs := remote.New(opts)
	require.NoError(t, rs.ApplyConfig(configWith(entry("a"), entry("b"))))
	for s := 0; s < 30; s++ {
		scrape(s)
	}
	rs.Notify()
	require.Eventually(t, func() bool { return a.Distinct() == 30*series }, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, rs.Close())
	require.Zero(t, b.Distinct())

	b.Respond(nil)
	rs = remote.New(opts)
	defer rs.Close()
	require.NoError(t, rs.ApplyConfig(configWith(entry("b"), entry("a"))))
	for s := 30; s < 40; s++ {
		scrape(s)
	}
	rs.Notify()
	if !assert.Eventually(t, func() bool { return a.Distinct() == 40*series && b.Distinct() == 40*series }, 20*time.Second, 5*time.Millisecond) {
		t.Fatalf("a has %d, b has %d of %d samples", a.Distinct(), b.Distinct(), 40*series)
	}
	for k, n := range a.Seen() {
		require.Equal(t, 1, n, "%s sent to a more than once", k)
	}
}
