package demo

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/stretchr/testify/require"
)

func TestConfigLoads(t *testing.T) {
	const url = "http://127.0.0.1:40123/api/v1/write"
	s, err := Config(url, "127.0.0.1:9095")
	require.NoError(t, err)

	// As the agent loads it: from a file, in agent mode.
	path := filepath.Join(t.TempDir(), "demo.yml")
	require.NoError(t, os.WriteFile(path, []byte(s), 0o600))
	cfg, err := config.LoadFile(path, true, slog.New(slog.DiscardHandler))
	require.NoError(t, err, s)

	require.Equal(t, model.Duration(5*time.Second), cfg.GlobalConfig.ScrapeInterval)

	scs, err := cfg.GetScrapeConfigs()
	require.NoError(t, err)
	require.Len(t, scs, 1)
	require.Equal(t, "walship", scs[0].JobName)
	require.Equal(t, "/metrics", scs[0].MetricsPath)
	require.Equal(t, model.Duration(5*time.Second), scs[0].ScrapeInterval)
	require.LessOrEqual(t, scs[0].ScrapeTimeout, scs[0].ScrapeInterval)
	require.Len(t, scs[0].ServiceDiscoveryConfigs, 1)
	static, ok := scs[0].ServiceDiscoveryConfigs[0].(discovery.StaticConfig)
	require.True(t, ok)
	require.Len(t, static, 1)
	require.Len(t, static[0].Targets, 1)
	require.Equal(t, model.LabelValue("127.0.0.1:9095"), static[0].Targets[0][model.AddressLabel])

	require.Len(t, cfg.RemoteWriteConfigs, 1)
	rw := cfg.RemoteWriteConfigs[0]
	require.Equal(t, "demo", rw.Name)
	require.Equal(t, url, rw.URL.String())
	require.Equal(t, "io.prometheus.write.v2.Request", string(rw.ProtobufMessage))
	require.Equal(t, model.Duration(time.Second), rw.QueueConfig.BatchSendDeadline)
	require.Less(t, time.Duration(rw.QueueConfig.BatchSendDeadline), time.Duration(cfg.GlobalConfig.ScrapeInterval))

	// And through config.Load, the in-memory path.
	_, err = config.Load(s, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
}

// TestConfigQuotes checks that values are quoted, not pasted into the YAML.
func TestConfigQuotes(t *testing.T) {
	const url = `http://127.0.0.1:1/write?x="a: b"#frag`
	s, err := Config(url, "[::1]:9095")
	require.NoError(t, err)
	cfg, err := config.Load(s, slog.New(slog.DiscardHandler))
	require.NoError(t, err, s)
	require.Equal(t, url, cfg.RemoteWriteConfigs[0].URL.String())
}

func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct{ url, addr string }{
		{"127.0.0.1:1/write", "127.0.0.1:9095"},
		{"ftp://127.0.0.1:1/write", "127.0.0.1:9095"},
		{"http:///write", "127.0.0.1:9095"},
		{"http://127.0.0.1:1/write", "127.0.0.1"},
		{"http://127.0.0.1:1/write", ""},
		{"http://[::1/write", "127.0.0.1:9095"},
	} {
		_, err := Config(tc.url, tc.addr)
		require.Error(t, err, "%q %q", tc.url, tc.addr)
	}
}
