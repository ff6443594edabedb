package remote

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// tee is the watcher's consumer when one watcher feeds the queues of
// several lanes (entries whose requests differ: other
// write_relabel_configs, queue_config or protocol). It hands what the
// watcher read to every lane's queue, so the WAL is read and decoded once.
//
// A lane whose queue is full holds the others back: the tee reports taken
// only what every lane took, remembers how much more of the record each
// lane has, and hands each lane only the part it has not got when the
// watcher hands the rest again. A lane that has taken nothing for the lag
// while another took more leaves (the owner's leave gives it a pipeline
// of its own from the group's saved position), so an endpoint that is down
// holds back the others for at most the lag; one that keeps taking sets
// the group's pace.
type tee struct {
	lag   time.Duration
	leave func(*lane) // the owner's: the lane is out of the tee

	lanes atomic.Pointer[[]*teeLane] // replaced, not changed, when a lane leaves

	// Used by the watcher's goroutine only.
	at    record.Span    // the record being handed over
	stuck time.Time      // since when a lane that took less has taken nothing; zero while all took the same
	wait  *queue.Manager // a lane's queue that took the least of the last items: the one to wait for
}

// teeLane is one lane in the tee, with how many items of the record being
// handed over it took beyond what the tee reported taken.
type teeLane struct {
	l     *lane
	q     *queue.Manager
	ahead int
	first *queue.Manager // the queue whose series it shares (StoreSeriesAfter); nil for the first of its protocol
}

var _ watcher.Consumer = (*tee)(nil)

func newTee(lanes []*lane, lag time.Duration, leave func(*lane)) *tee {
	t := &tee{lag: lag, leave: leave}
	in := make([]*teeLane, len(lanes))
	for i, l := range lanes {
		in[i] = &teeLane{l: l, q: l.q.Load()}
	}
	// The first lane of each protocol holds the series the others' caches
	// mirror: the one with the fewest write_relabel_configs (none: every
	// series as the WAL has it).
	slices.SortStableFunc(in, func(a, b *teeLane) int { return cmp.Compare(a.l.relabelRules(), b.l.relabelRules()) })
	setFirsts(in)
	t.lanes.Store(&in)
	t.wait = in[0].q
	return t
}

// setFirsts gives each lane the first lane before it of its protocol (RW2
// encodings carry metadata, RW1 ones do not) to share series with.
func setFirsts(lanes []*teeLane) {
	for i, tl := range lanes {
		tl.first = nil
		for _, before := range lanes[:i] {
			if before.l.members[0].proto == tl.l.members[0].proto {
				tl.first = before.q
				break
			}
		}
	}
}

// StoreSeries stores series in the queue of the first lane of each
// protocol, then in the others' after it: a series their relabelling
// leaves as the WAL has it is held once, by the first
// (queue.Manager.StoreSeriesAfter).
func (t *tee) StoreSeries(series []record.RefSeries, segment int) {
	t.firstsThenOthers(
		func(q *queue.Manager) { q.StoreSeries(series, segment) },
		func(q, first *queue.Manager) { q.StoreSeriesAfter(first, series, segment) })
}

func (t *tee) StoreMetadata(meta []record.RefMetadata) {
	t.firstsThenOthers(
		func(q *queue.Manager) { q.StoreMetadata(meta) },
		func(q, first *queue.Manager) { q.StoreMetadataAfter(first, meta) })
}

// SeriesReset resets the queue of the first lane of each protocol, then
// the others' after it (queue.Manager.SeriesResetAfter).
func (t *tee) SeriesReset(segment int) {
	t.firstsThenOthers(
		func(q *queue.Manager) { q.SeriesReset(segment) },
		func(q, first *queue.Manager) { q.SeriesResetAfter(first, segment) })
}

// firstsThenOthers calls alone with the queue of the first lane of each
// protocol, then after with each other lane's and its first: the order
// the queues' After calls need.
func (t *tee) firstsThenOthers(alone func(q *queue.Manager), after func(q, first *queue.Manager)) {
	lanes := *t.lanes.Load()
	for _, tl := range lanes {
		if tl.first == nil {
			alone(tl.q)
		}
	}
	for _, tl := range lanes {
		if tl.first != nil {
			after(tl.q, tl.first)
		}
	}
}

func (t *tee) AppendSamples(s []record.RefSample, at record.Span) int {
	return teeAppend(t, s, at, (*queue.Manager).AppendSamples)
}

func (t *tee) AppendHistograms(h []record.RefHistogramSample, at record.Span) int {
	return teeAppend(t, h, at, (*queue.Manager).AppendHistograms)
}

func (t *tee) AppendFloatHistograms(h []record.RefFloatHistogramSample, at record.Span) int {
	return teeAppend(t, h, at, (*queue.Manager).AppendFloatHistograms)
}

func (t *tee) AppendExemplars(e []record.RefExemplar, at record.Span) int {
	return teeAppend(t, e, at, (*queue.Manager).AppendExemplars)
}

// teeAppend hands items to every lane that has not got them yet and
// returns how many of the leading ones every lane has now.
func teeAppend[T any](t *tee, items []T, at record.Span, appendTo func(*queue.Manager, []T, record.Span) int) int {
	lanes := *t.lanes.Load()
	if at != t.at { // a new record: nobody has any of it
		t.at, t.stuck = at, time.Time{}
		for _, tl := range lanes {
			tl.ahead = 0
		}
	}
	took, most := len(items), 0
	for _, tl := range lanes {
		if tl.ahead < len(items) {
			tl.ahead += appendTo(tl.q, items[tl.ahead:], at)
		}
		took, most = min(took, tl.ahead), max(most, tl.ahead)
	}
	now := time.Now()
	switch {
	case took == most:
		t.stuck = time.Time{}
	case took > 0 || t.stuck.IsZero():
		t.stuck = now // the slowest took something, or the lanes just parted
	case now.Sub(t.stuck) >= t.lag:
		lanes = t.dropBehind(lanes)
		took, t.stuck = most, time.Time{}
		for _, tl := range lanes {
			took = min(took, tl.ahead)
		}
	}
	for _, tl := range lanes {
		if tl.ahead -= took; tl.ahead == 0 {
			t.wait = tl.q
		}
	}
	return took
}

// dropBehind lets go of the lanes that took none of the record's rest
// while another took some, and returns the lanes that stay.
func (t *tee) dropBehind(lanes []*teeLane) []*teeLane {
	var stay, gone []*teeLane
	for _, tl := range lanes {
		if tl.ahead == 0 {
			gone = append(gone, tl)
		} else {
			stay = append(stay, tl)
		}
	}
	setFirsts(stay) // a lane whose first left follows another, or none
	t.lanes.Store(&stay)
	for _, tl := range gone {
		t.leave(tl.l)
	}
	return stay
}

// Ready is the ready signal of a lane that took the least of what the
// watcher handed over last: nothing more is taken before it takes more.
func (t *tee) Ready() <-chan struct{} { return t.wait.Ready() }

// LowestPending is the earliest of the lanes'.
func (t *tee) LowestPending() (record.Position, bool) {
	var lowest record.Position
	found := false
	for _, tl := range *t.lanes.Load() {
		if pos, ok := tl.q.LowestPending(); ok && (!found || pos.Less(lowest)) {
			lowest, found = pos, true
		}
	}
	return lowest, found
}
