package remote

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"
)

// TestTeeFirstLaneRelabelsLeast: the tee's first lane, whose series the
// other lanes' caches mirror, is the one with the fewest
// write_relabel_configs, whatever the order of the configuration.
func TestTeeFirstLaneRelabelsLeast(t *testing.T) {
	laneWith := func(index uint8, rules int) *lane {
		cfg := &config.RemoteWriteConfig{WriteRelabelConfigs: make([]*relabel.Config, rules)}
		return &lane{members: []*endpoint{{cfg: cfg}}, index: index}
	}
	a, b, c, d := laneWith(0, 2), laneWith(1, 0), laneWith(2, 1), laneWith(3, 1)
	tee := newTee([]*lane{a, b, c, d}, time.Second, nil)
	var got []*lane
	for _, tl := range *tee.lanes.Load() {
		got = append(got, tl.l)
	}
	require.Equal(t, []*lane{b, c, d, a}, got)
}
