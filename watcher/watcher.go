package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// Watcher tails one log directory for one consumer. Run is its only
// goroutine; Notify may be called from any goroutine.
type Watcher struct {
	opts   Options
	c      Consumer
	m      *consumerMetrics
	log    *slog.Logger
	notify chan struct{}
	wake   *wakeups

	dec        record.Decoder
	series     []record.RefSeries
	metadata   []record.RefMetadata
	samples    []record.RefSample
	histograms []record.RefHistogramSample
	floatHists []record.RefFloatHistogramSample
	exemplars  []record.RefExemplar

	// State owned by Run.
	readPos        record.Position // end of the last record fully handed over
	delivering     bool            // a record is being handed over...
	deliveringFrom record.Position // ...and this is its start
	startTime      int64           // only samples after this (ms) are sent: NotBefore, or FromNow's start
	lastCheckpoint int             // index of the checkpoint last read, -1 for none
	lastSaved      record.Position
	started        bool // the start position is known (lastSaved holds it or a later one)
	lastSave       time.Time
	lastGC         time.Time
	// preloaded is the start of the last series record preloadSeries
	// stored (Backfill): series records up to it are not decoded again.
	preloaded    record.Position
	hasPreloaded bool

	// Gap accounting: segments skipped whose samples are estimated from the
	// next segment read whole.
	gapSegments    int
	segmentSamples int // samples seen in the segment being read

	damage damage // in the segment being read, being passed over
}

// New returns a Watcher feeding c from the log in opts.Dir.
func New(c Consumer, opts Options) (*Watcher, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Watcher{
		opts:           opts,
		c:              c,
		m:              opts.Metrics.forConsumer(opts.Name),
		log:            opts.Logger.With("component", "wal-watcher", "consumer", opts.Name),
		notify:         make(chan struct{}, 1),
		lastCheckpoint: -1,
	}, nil
}

// Notify tells the watcher that the writer has appended to the log, so it
// reads at once instead of at its next poll. It never blocks.
func (w *Watcher) Notify() {
	select {
	case w.notify <- struct{}{}:
	default:
		w.m.notificationsSkip.Inc()
	}
}

// position returns the position the watcher would save now: everything
// before it has been acknowledged by the consumer.
func (w *Watcher) position() record.Position {
	pos := w.readPos
	if w.delivering && w.deliveringFrom.Less(pos) {
		pos = w.deliveringFrom
	}
	if p, ok := w.c.LowestPending(); ok && p.Less(pos) {
		pos = p
	}
	return pos
}

// ErrReachedEnd is returned by Run with Options.StopAtEnd once the whole
// log was handed over.
var ErrReachedEnd = errors.New("watcher: read the whole log")

// Run reads the log and feeds the consumer until ctx ends. It returns nil
// when ctx ends, after saving the acknowledged position, ErrReachedEnd with
// StopAtEnd or StopAt, or an error when it cannot go on (the directory cannot be
// listed, the position cannot be loaded).
func (w *Watcher) Run(ctx context.Context) error {
	w.wake = newWakeups(w.opts.Dir, w.notify, w.opts.PollInterval, min(w.opts.SaveInterval, w.opts.CheckpointInterval), w.log.Info)
	defer w.wake.close()

	start, err := w.startPosition(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil
		}
		return err
	}
	w.readPos = start
	w.lastSaved, w.started = start, true
	if w.opts.Start == FromNow {
		// Where "now" began is saved at once: until something is
		// acknowledged it is all there is to resume from.
		w.savePosition(true)
	}
	w.lastSave, w.lastGC = w.opts.Now(), w.opts.Now()
	w.log.Info("Starting WAL watcher", "dir", w.opts.Dir, "start", w.opts.Start.String(), "position", start.String())

	if w.opts.Backfill {
		err = w.backfillCheckpoint(ctx)
	}
	if err == nil {
		err = w.follow(ctx, start)
	}
	w.savePosition(true)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// startPosition waits for the log to have a segment, replays the newest
// checkpoint's series, and returns where sending starts.
func (w *Watcher) startPosition(ctx context.Context) (record.Position, error) {
	var segs []wal.SegmentRef
	for {
		var err error
		if segs, err = wal.ListSegments(w.opts.FS, w.opts.Dir); err != nil {
			return record.Position{}, fmt.Errorf("watcher: %w", err)
		}
		if len(segs) > 0 {
			break
		}
		if w.opts.StopAtEnd {
			return record.Position{}, ErrReachedEnd
		}
		if err := w.wait(ctx); err != nil {
			return record.Position{}, err
		}
	}
	if err := w.readCheckpoint(); err != nil {
		return record.Position{}, err
	}
	if w.opts.Backfill {
		if err := w.preloadSeries(ctx); err != nil {
			return record.Position{}, err
		}
	}
	first, last := segs[0].Index, segs[len(segs)-1].Index
	w.startTime = w.opts.NotBefore
	switch w.opts.Start {
	case FromBeginning:
		return record.Position{Segment: first}, nil
	case FromNow:
		if w.startTime == 0 {
			w.startTime = w.opts.Now().UnixMilli()
		}
		return record.Position{Segment: last}, nil
	}
	if w.opts.Positions == nil {
		return record.Position{Segment: first}, nil
	}
	pos, ok, err := w.opts.Positions.Load()
	if err != nil {
		return record.Position{}, fmt.Errorf("watcher: %w", err)
	}
	if !ok {
		return record.Position{Segment: first}, nil
	}
	if pos.Segment < first {
		w.reportGap(pos.Segment, first, "saved position is in a segment deleted since")
		return record.Position{Segment: first}, nil
	}
	if pos.Segment > last {
		// The log was replaced (deleted and started again) since: what it
		// holds now was never sent.
		w.log.Warn("Saved position is past the end of the WAL; starting at its oldest segment",
			"position", pos.String(), "newest_segment", last)
		return record.Position{Segment: first}, nil
	}
	return pos, nil
}

// SavePosition saves the acknowledged position now. Call it only after Run
// has returned, typically once the consumer has flushed what it held, so that
// what the flush sent is not sent again after a restart.
func (w *Watcher) SavePosition() { w.savePosition(true) }

// reportGap records that segments [from, to) were deleted unread.
func (w *Watcher) reportGap(from, to int, why string) {
	n := to - from
	w.gapSegments += n
	w.m.gapSegments.Add(float64(n))
	w.log.Warn("WAL segments deleted before they were read: their samples are lost",
		"reason", why, "first_missing", from, "last_missing", to-1, "segments", n)
}

// estimateGap turns skipped segments into an estimated sample count once a
// whole segment after the gap has been read.
func (w *Watcher) estimateGap(samplesInSegment int) {
	if w.gapSegments == 0 {
		return
	}
	lost := w.gapSegments * samplesInSegment
	w.m.gapSamples.Add(float64(lost))
	w.log.Warn("Estimated samples lost in deleted WAL segments", "segments", w.gapSegments, "samples_estimated", lost)
	w.gapSegments = 0
}

// wait blocks until the log may have changed or ctx ends, doing periodic
// work (saving the position, looking for checkpoints) on the way.
func (w *Watcher) wait(ctx context.Context) error {
	events, errs := w.wake.events()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.wake.notify:
	case <-events:
	case err := <-errs:
		w.log.Debug("File-system notification error", "err", err)
	case <-w.wake.ticker.C:
	case <-w.wake.periodic.C:
	}
	w.periodic()
	return nil
}

// periodic saves the position and garbage-collects series when due.
func (w *Watcher) periodic() {
	now := w.opts.Now()
	if now.Sub(w.lastSave) >= w.opts.SaveInterval {
		w.lastSave = now
		w.savePosition(false)
		w.updateLag()
	}
	if now.Sub(w.lastGC) >= w.opts.CheckpointInterval {
		w.lastGC = now
		if err := w.collectGarbage(); err != nil {
			w.log.Warn("Reading new checkpoint failed", "err", err)
		}
	}
}

// savePosition saves the acknowledged position if it moved (or always, on the last save).
func (w *Watcher) savePosition(final bool) {
	if w.opts.Positions == nil || !w.started {
		return // nothing to save before the start is known
	}
	pos := w.position()
	if pos == w.lastSaved && !final {
		return
	}
	if pos.Less(w.lastSaved) {
		// Never move the saved position back: what is before it was
		// acknowledged already.
		pos = w.lastSaved
	}
	if err := w.opts.Positions.Save(pos); err != nil {
		w.m.positionFailures.Inc()
		w.log.Error("Saving the acknowledged WAL position failed; a restart would resend from the last saved one", "err", err)
		return
	}
	w.m.positionSaves.Inc()
	w.lastSaved = pos
}

// updateLag sets the lag gauges from the acknowledged position to the end
// of the newest segment.
func (w *Watcher) updateLag() {
	segs, err := wal.ListSegments(w.opts.FS, w.opts.Dir)
	if err != nil || len(segs) == 0 {
		return
	}
	acked := w.position()
	var lag int64
	for _, s := range segs {
		if s.Index < acked.Segment {
			continue
		}
		if info, err := w.opts.FS.Stat(wal.SegmentPath(w.opts.Dir, s.Index)); err == nil {
			lag += info.Size()
		}
	}
	lag = max(lag-acked.Offset, 0)
	w.m.lagBytes.Set(float64(lag))
	w.m.lagSegments.Set(float64(max(segs[len(segs)-1].Index-acked.Segment, 0)))
}
