package storage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal"
)

// TestTruncationWaitsForTheEndpoint wires the agent storage to walship's
// remote storage as the agent does (Acked, Notify). While the endpoint is
// down, truncations checkpoint nothing it has not acknowledged; once it is
// back every sample arrives, and the next truncation deletes what was sent.
func TestTruncationWaitsForTheEndpoint(t *testing.T) {
	var down atomic.Bool
	var mu sync.Mutex
	seen := map[string]bool{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, body)
		require.NoError(t, err)
		var req prompb.WriteRequest
		require.NoError(t, req.Unmarshal(raw))
		mu.Lock()
		defer mu.Unlock()
		for _, ts := range req.Timeseries {
			for _, s := range ts.Samples {
				seen[fmt.Sprintf("%v@%d", ts.Labels, s.Timestamp)] = true
			}
		}
	}))
	defer recv.Close()
	received := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }

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

	down.Store(true)
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

	down.Store(false)
	require.Eventually(t, func() bool { return received() == nSeries*scrapes }, 30*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		return rs.AckedPositions()["down-then-up"].Segment >= segs[len(segs)-1].Index
	}, 30*time.Second, 5*time.Millisecond, "the acknowledged position is saved")
	require.NoError(t, db.Truncate(now+scrapes))
	after, err := wal.ListSegments(wal.OS, db.WALDir())
	require.NoError(t, err)
	require.Greater(t, after[0].Index, 0, "acknowledged segments are deleted")
}
