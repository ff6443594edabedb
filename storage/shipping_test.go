package storage

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal"
)

// TestTruncationWaitsForTheEndpoint wires the agent storage to walship's
// remote storage as the agent does (Acked, Notify). While the endpoint is
// down, truncations checkpoint nothing it has not acknowledged; once it is
// back every sample arrives, and the next truncation deletes what was sent.
func TestTruncationWaitsForTheEndpoint(t *testing.T) {
	recv := testkit.NewReceiver(t)
	received := recv.Distinct

	dir := t.TempDir()
	rs := remote.New(remote.Options{WALDir: filepath.Join(dir, "wal"), PositionsDir: filepath.Join(dir, "positions")})
	defer rs.Close()
	db := openDB(t, dir, Options{SegmentSize: wal.PageSize, Compression: wal.None, Notify: rs.Notify, Acked: rs.AckedPositions})
	defer closeDB(t, db)

	u, err := url.Parse(recv.URL)
	require.NoError(t, err)
	rw := config.DefaultRemoteWriteConfig
	rw.Name, rw.URL = "down-then-up", &commoncfg.URL{URL: u}
	rw.QueueConfig.BatchSendDeadline = model.Duration(10 * time.Millisecond)
	rw.QueueConfig.MinBackoff, rw.QueueConfig.MaxBackoff = model.Duration(time.Millisecond), model.Duration(20*time.Millisecond)
	cfg := config.DefaultConfig
	cfg.RemoteWriteConfigs = []*config.RemoteWriteConfig{&rw}
	require.NoError(t, rs.ApplyConfig(&cfg))

	recv.Respond(testkit.Refuse(http.StatusServiceUnavailable)) // down
	const nSeries, scrapes = 20, 600
	now := time.Now().UnixMilli()
	for c := 0; c < scrapes; c++ {
		app := db.Appender(context.Background())
		for i := 0; i < nSeries; i++ {
			_, err := app.Append(0, series(i), now+int64(c), float64(c*i))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
		if c%100 == 99 {
			require.NoError(t, db.Truncate(now+int64(c))) // every series is old: only the endpoint holds segments back
		}
	}
	segs, err := wal.ListSegments(wal.OS, db.WALDir())
	require.NoError(t, err)
	require.Zero(t, segs[0].Index, "nothing was deleted while the endpoint was down")
	require.Zero(t, received())

	recv.Respond(nil) // back
	require.Eventually(t, func() bool { return received() == nSeries*scrapes }, 30*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		return rs.AckedPositions()["down-then-up"].Segment >= segs[len(segs)-1].Index
	}, 30*time.Second, 5*time.Millisecond, "the acknowledged position is saved")
	require.NoError(t, db.Truncate(now+scrapes))
	after, err := wal.ListSegments(wal.OS, db.WALDir())
	require.NoError(t, err)
	require.Greater(t, after[0].Index, 0, "acknowledged segments are deleted")
}
