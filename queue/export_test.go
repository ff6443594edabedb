package queue

import "time"

// SetShardUpdateInterval makes resharding tests run in milliseconds.
func (m *Manager) SetShardUpdateInterval(d time.Duration) {
	m.planner.every = d
	m.signals.in = newEWMARate(0.2, d)
}

// Carried reports whether the request being built started from the
// previous request's symbol table.
func (e *rw2Encoder) Carried() bool { return e.carried }
