package remote

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/queue"
)

// TestTeeFirsts: each lane shares the series of the first lane of its
// protocol (RW2 encodings carry metadata), and the first lane of each is
// the one with the fewest write_relabel_configs, whatever the order of
// the configuration. When a first leaves, the next lane of its protocol
// takes its place.
func TestTeeFirsts(t *testing.T) {
	laneWith := func(index uint8, proto queue.Protocol, rules int) *lane {
		cfg := &config.RemoteWriteConfig{WriteRelabelConfigs: make([]*relabel.Config, rules)}
		l := &lane{members: []*endpoint{{cfg: cfg, proto: proto}}, index: index}
		l.q.Store(new(queue.Manager)) // only told apart here, never run
		return l
	}
	a, b, c, d := laneWith(0, queue.RW1, 2), laneWith(1, queue.RW1, 0), laneWith(2, queue.RW2, 1), laneWith(3, queue.RW2, 1)
	tee := newTee([]*lane{a, b, c, d}, time.Second, func(*lane) {})
	// firsts fails unless each lane in want, and no other, is in the tee
	// with the given first (the very queue: zero Managers are deep equal).
	firsts := func(want map[*lane]*queue.Manager) {
		t.Helper()
		lanes := *tee.lanes.Load()
		require.Len(t, lanes, len(want))
		for _, tl := range lanes {
			first, ok := want[tl.l]
			require.True(t, ok, "lane %d", tl.l.index)
			require.True(t, first == tl.first, "lane %d's first", tl.l.index)
		}
	}
	var order []uint8
	for _, tl := range *tee.lanes.Load() {
		order = append(order, tl.l.index)
	}
	require.Equal(t, []uint8{1, 2, 3, 0}, order, "b, c, d, a")
	firsts(map[*lane]*queue.Manager{a: b.q.Load(), b: nil, c: nil, d: c.q.Load()})

	// c takes nothing while the others take a record: it leaves, and d is
	// the first of RW2.
	for _, tl := range *tee.lanes.Load() {
		tl.ahead = 1
	}
	lanes := *tee.lanes.Load()
	lanes[1].ahead = 0
	tee.dropBehind(lanes)
	firsts(map[*lane]*queue.Manager{a: b.q.Load(), b: nil, d: nil})
}
