package remote

import (
	"path/filepath"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// TestReplayDropsExemplarsLeftWaiting: a replay (StopAtEnd) over RW2 whose
// log ends with an exemplar of a series whose sample went out long before
// (more records back than feed.attach looks): no later sample will come,
// so once everything else was sent the exemplar is dropped and counted,
// and the saved position reaches the end of the log instead of staying
// before the exemplar's record. (A test of remote, not of the queue: the
// pipeline drops what waits once its watcher reached the end of the log,
// and saves the position.)
func TestReplayDropsExemplarsLeftWaiting(t *testing.T) {
	dir := t.TempDir()
	walDir := filepath.Join(dir, "wal")
	var enc record.Encoder
	ts := time.Now().Add(-time.Minute).UnixMilli()
	w, err := wal.Open(walDir, wal.Options{})
	require.NoError(t, err)
	series := []record.RefSeries{
		{Ref: 1, Labels: labels.FromStrings("__name__", "requests_total", "job", "api")},
		{Ref: 2, Labels: labels.FromStrings("__name__", "filler")},
	}
	require.NoError(t, w.Log(enc.Series(nil, series)))
	require.NoError(t, w.Log(enc.Samples(nil, []record.RefSample{{Ref: 1, T: ts, V: 1}})))
	for i := range 20 {
		require.NoError(t, w.Log(enc.Samples(nil, []record.RefSample{{Ref: 2, T: ts + int64(i), V: 2}})))
	}
	require.NoError(t, w.Close())
	// The exemplar opens a segment of its own: its record starts at {1, 0}.
	w, err = wal.Open(walDir, wal.Options{})
	require.NoError(t, err)
	require.NoError(t, w.Log(enc.Exemplars(nil, []record.RefExemplar{{Ref: 1, T: ts, V: 0.5, Labels: labels.FromStrings("trace_id", "late")}})))
	require.NoError(t, w.Close())

	app := newUpstreamReceiver(t, remoteapi.WriteV2MessageType)
	reg := prometheus.NewRegistry()
	rs := New(Options{WALDir: walDir, PositionsDir: filepath.Join(dir, "positions"), StopAtEnd: true, Registerer: reg})
	defer rs.Close()
	cfg := testConfig(t, app.URL)
	cfg.Name = "replay"
	cfg.SendExemplars = true
	cfg.ProtobufMessage = remoteapi.WriteV2MessageType
	cfg.QueueConfig.MaxSamplesPerSend = 1
	conf := config.DefaultConfig
	conf.RemoteWriteConfigs = []*config.RemoteWriteConfig{cfg}
	require.NoError(t, rs.ApplyConfig(&conf))
	select {
	case <-rs.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the replay did not finish")
	}
	samples, _, exemplars := app.Snapshot()
	require.Len(t, samples[series[0].Labels.String()], 1)
	require.Len(t, samples[series[1].Labels.String()], 20)
	require.Empty(t, exemplars[series[0].Labels.String()])
	require.Equal(t, 1.0, testkit.Metric(t, reg, "prometheus_remote_storage_exemplars_dropped_total", "reason", "no_sample_in_request"))
	pos := rs.AckedPositions()["replay"]
	require.True(t, record.Position{Segment: 1}.Less(pos), "saved at %v: past the exemplar's record", pos)
}
