package queue

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// A one-second-step model of a remote-write queue reading a WAL, used to
// compare resharding rules on the same timeline: how fast a backlog left
// by an outage is worked off, and how often the shard count changes under
// a steady but noisy load. It models what the rules see, not goroutines:
// samples are written to the WAL at a fixed rate, read into the shards while
// they have room, and sent at batch/latency per shard per second.
type simScenario struct {
	seconds     int
	writeRate   float64               // samples per second written to the WAL
	every       int                   // seconds between scrapes written at once; 0: evenly
	latency     func(sec int) float64 // seconds per request at a given second
	down        func(sec int) bool    // every send fails (an outage)
	noise       float64               // ± fraction of latency noise per second
	batch, capa int                   // max_samples_per_send, capacity
	minShards   int                   // min_shards
	maxShards   int                   // max_shards
	seed        int64
}

// simResult is what a run of the model reports.
type simResult struct {
	shards    []int     // shard count at each second
	lag       []float64 // how long the oldest sample not yet sent has waited, at each second
	changes   int       // how many times the count changed
	maxShards int
}

// simRule decides the next shard count at a tick (every 10 s) from what
// the interval measured.
type simRule interface {
	decide(m simInterval) int
}

// simInterval is what one 10 s interval measured.
type simInterval struct {
	now             float64 // seconds since start
	current         int
	enqueued, sent  float64 // samples over the interval
	sendSeconds     float64 // summed request durations of successful sends
	requests        float64 // successful requests
	pending         float64 // samples in the shards at the tick
	newestWritten   float64 // data time of the newest sample written (scraped)
	newestSent      float64 // data time of the newest sample sent
	newestQueued    float64 // data time of the newest sample read
	blocked         float64 // seconds samples waited for room in the shards
	lastSuccess     float64 // time of the last successful send; -1 if none
	min, max, batch int
}

const simTick = 10

// ourRule is walship's desiredShards fed as the queue feeds it.
type ourRule struct {
	in      *ewmaRate
	history *shardHistory
}

func (r *ourRule) decide(m simInterval) int {
	r.in.add(int64(m.enqueued))
	mean := 0.0
	if m.requests > 0 {
		mean = m.sendSeconds / m.requests
	}
	in := shardInputs{
		Current: m.current, Min: m.min, Max: m.max,
		InRate: r.in.tick(), Pending: int(m.pending), SendSeconds: mean, BatchSize: m.batch,
		Busy: m.sendSeconds / (float64(m.current) * simTick), Blocked: m.blocked / simTick, Behind: m.now - m.newestQueued,
	}
	asked := desiredShards(in)
	in.Floor = r.history.floor()
	r.history.add(asked)
	return desiredShards(in)
}

// upstreamRule is our reading of Prometheus v0.316.0's
// QueueManager.calculateDesiredShards and shouldReshard (the baseline the
// issue names): EWMAs (weight 0.2) of samples in, samples out and send
// time; a catch-up of 5 % per second of the samples behind, estimated from
// the delay between the newest scraped and the newest sent timestamps; a
// ±30 % dead band; no downsharding while more than 10 s behind; no
// resharding when nothing was sent in the last interval.
type upstreamRule struct{ in, out, dur *ewmaRate }

func (r *upstreamRule) decide(m simInterval) int {
	r.in.add(int64(m.enqueued))
	r.out.add(int64(m.sent))
	r.dur.add(int64(m.sendSeconds * 1e9))
	in, out, dur := r.in.tick(), r.out.tick(), r.dur.tick()/1e9
	if m.lastSuccess < 0 || m.now-m.lastSuccess > simTick {
		return m.current // shouldReshard: no send in the last interval
	}
	if out <= 0 {
		return m.current
	}
	delay := max(m.newestWritten-m.newestSent, 0) // highest received minus highest sent
	pending := delay * in
	desired := dur / out * (in + 0.05*pending)
	lower, upper := float64(m.current)*0.7, float64(m.current)*1.3
	desired = math.Ceil(desired)
	if lower <= desired && desired <= upper {
		return m.current
	}
	n := int(desired)
	if n < m.current && delay > 10 {
		return m.current
	}
	return max(m.min, min(m.max, n))
}

func simulate(sc simScenario, rule simRule) simResult {
	rng := rand.New(rand.NewSource(sc.seed))
	// written is how many samples were written by time t; dataTime is when
	// the c-th sample was written. With every > 0 the samples of a scrape
	// interval are written at once at its end (one big target), otherwise
	// evenly (many targets with spread scrape offsets).
	written := func(t float64) float64 { return sc.writeRate * t }
	dataTime := func(c float64) float64 { return c / sc.writeRate }
	if sc.every > 0 {
		burst := sc.writeRate * float64(sc.every)
		written = func(t float64) float64 { return burst * math.Floor(t/float64(sc.every)) }
		dataTime = func(c float64) float64 { return float64(sc.every) * math.Ceil(c/burst) }
	}
	var res simResult
	n := sc.minShards
	read, sent := 0.0, 0.0 // samples read into the shards, and sent
	var iv simInterval
	iv.lastSuccess = -1
	for sec := 0; sec < sc.seconds; sec++ {
		now := float64(sec + 1)
		// The watcher refills the shards while they send, so what a second
		// can send is bounded by the shards' speed and by what was written,
		// not by their capacity; capacity bounds what waits in them after.
		queued, available := read-sent, written(now)-sent
		moved := 0.0
		if !sc.down(sec) {
			lat := sc.latency(sec) * (1 + sc.noise*(2*rng.Float64()-1))
			moved = min(available, float64(n)*float64(sc.batch)/lat)
			if moved > 0 {
				iv.sent += moved
				iv.requests += moved / float64(sc.batch)
				iv.sendSeconds += moved / float64(sc.batch) * lat
				iv.lastSuccess = now
			}
		}
		sent += moved
		after := min(float64(n*sc.capa), available-moved)
		if available-moved > after {
			iv.blocked++
		}
		iv.enqueued += after + moved - queued
		read = sent + after
		iv.newestWritten, iv.newestSent, iv.newestQueued = dataTime(written(now)), dataTime(sent), dataTime(read)

		if (sec+1)%simTick == 0 {
			iv.now, iv.current, iv.min, iv.max, iv.batch = now, n, sc.minShards, sc.maxShards, sc.batch
			iv.pending = read - sent
			next := rule.decide(iv)
			if next != n {
				res.changes++
			}
			n = next
			iv = simInterval{lastSuccess: iv.lastSuccess}
		}
		res.shards = append(res.shards, n)
		lag := 0.0 // how long the oldest sample not sent has waited
		if written(now) > sent {
			lag = now - dataTime(sent+1)
		}
		res.lag = append(res.lag, lag)
		res.maxShards = max(res.maxShards, n)
	}
	return res
}

func newOurRule() simRule {
	return &ourRule{in: newEWMARate(0.2, simTick*1e9), history: newShardHistory(int(stabilisationWindow.Seconds()) / simTick)}
}
func newUpstreamRule() simRule {
	return &upstreamRule{in: newEWMARate(0.2, simTick*1e9), out: newEWMARate(0.2, simTick*1e9), dur: newEWMARate(0.2, simTick*1e9)}
}

// caughtUp returns the first second at or after from when the lag is
// back under limit, or -1.
func caughtUp(r simResult, from int, limit float64) int {
	for s := from; s < len(r.lag); s++ {
		if r.lag[s] < limit {
			return s
		}
	}
	return -1
}

// TestReshardSimulation runs walship's rule and upstream's side by side
// in the model. After an outage walship's must work the backlog off no
// later than upstream's (it did 4-5x later before the rule looked at how
// long the input waited and how far behind it is); with the endpoint
// slower it must fall no further behind; under a steady load, written
// evenly or in bursts a scrape interval apart, with noisy latency, its
// count must not change once settled and no sample may wait longer than
// with upstream's. The figures are logged (go test ./queue -run
// ReshardSimulation -v) and quoted in BENCHMARKS.md.
func TestReshardSimulation(t *testing.T) {
	constant := func(v float64) func(int) float64 { return func(int) float64 { return v } }
	never := func(int) bool { return false }
	base := simScenario{batch: 2000, capa: 10000, minShards: 1, maxShards: 50, seed: 1, latency: constant(0.1), down: never}
	run := func(sc simScenario) (ours, theirs simResult) {
		return simulate(sc, newOurRule()), simulate(sc, newUpstreamRule())
	}

	for _, outage := range []int{60, 600, 1800} {
		sc := base
		sc.writeRate, sc.seconds = 100_000, 300+outage+3600
		sc.down = func(s int) bool { return s >= 300 && s < 300+outage }
		ours, theirs := run(sc)
		end := 300 + outage
		oursAt, theirsAt := caughtUp(ours, end, 30)-end, caughtUp(theirs, end, 30)-end
		t.Logf("outage of %4d s at 100k samples/s: back under 30 s of lag after %3d s (walship, up to %2d shards, %2d changes) vs %3d s (upstream, up to %2d shards, %2d changes)",
			outage, oursAt, ours.maxShards, ours.changes, theirsAt, theirs.maxShards, theirs.changes)
		if oursAt > theirsAt+simTick {
			t.Errorf("outage of %d s: walship caught up after %d s, upstream after %d s", outage, oursAt, theirsAt)
		}
	}

	sc := base
	sc.writeRate, sc.seconds = 50_000, 3600
	sc.latency = func(s int) float64 { return map[bool]float64{false: 0.1, true: 1}[s >= 600] }
	ours, theirs := run(sc)
	worst := func(r simResult) float64 { return slices.Max(r.lag[600:]) }
	t.Logf("endpoint 10x slower (0.1 s to 1 s per request) at 50k samples/s: lag at most %.0f s, %d shards (walship) vs %.0f s, %d shards (upstream)",
		worst(ours), ours.shards[len(ours.shards)-1], worst(theirs), theirs.shards[len(theirs.shards)-1])
	if worst(ours) > worst(theirs)+simTick {
		t.Errorf("endpoint 10x slower: walship fell %.0f s behind, upstream %.0f s", worst(ours), worst(theirs))
	}

	for _, load := range []struct {
		rate  float64
		every int
	}{{15_000, 0}, {30_000, 0}, {45_000, 0}, {100_000, 0}, {30_000, 15}, {30_000, 60}, {100_000, 60}} {
		rate := load.rate
		sc := base
		sc.writeRate, sc.every, sc.seconds, sc.noise = rate, load.every, 3600, 0.3
		ours, theirs := run(sc)
		changes := func(r simResult) int {
			n := 0
			for s := 600; s < len(r.shards); s++ {
				if r.shards[s] != r.shards[s-1] {
					n++
				}
			}
			return n
		}
		t.Logf("steady %3.0fk samples/s, written at once every %2d s (0: evenly), latency ±30%%: %3d changes after the first 10 min, %2d shards, samples wait up to %2.0f s (walship) vs %3d changes, %2d shards, %2.0f s (upstream)",
			rate/1000, load.every, changes(ours), ours.shards[len(ours.shards)-1], worst(ours),
			changes(theirs), theirs.shards[len(theirs.shards)-1], worst(theirs))
		if changes(ours) != 0 {
			t.Errorf("steady %.0f samples/s every %d s: walship changed the count %d times after settling", rate, load.every, changes(ours))
		}
		if worst(ours) > worst(theirs)+1 {
			t.Errorf("steady %.0f samples/s every %d s: samples waited up to %.0f s with walship, %.0f s with upstream", rate, load.every, worst(ours), worst(theirs))
		}
	}
}
