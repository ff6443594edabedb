package remote_test

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	kitlog "github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	slgk "github.com/tjhop/slog-gokit"

	"github.com/walship/walship/remote"
)

// TestGoKitLoggerAdapter: the README's one line for a fork still on
// go-kit's logger — walship's slog output reaches the go-kit logger.
func TestGoKitLoggerAdapter(t *testing.T) {
	var out bytes.Buffer
	kitLogger := kitlog.NewLogfmtLogger(&out)

	rs := remote.NewStorage(slog.New(slgk.NewGoKitHandler(kitLogger, nil)), prometheus.NewRegistry(), nil, t.TempDir(), time.Second, nil, false)
	cfg := configWith()
	cfg.RemoteReadConfigs = append(cfg.RemoteReadConfigs, nil) // remote_read is warned about
	require.NoError(t, rs.ApplyConfig(cfg))
	require.NoError(t, rs.Close())
	require.Contains(t, out.String(), "remote_read is not supported")
}
