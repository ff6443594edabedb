package queue

import "time"

// SetShardUpdateInterval makes resharding tests run in milliseconds.
func (m *Manager) SetShardUpdateInterval(d time.Duration) {
	m.updateEvery = d
	m.inRate = newEWMARate(0.2, d)
}
