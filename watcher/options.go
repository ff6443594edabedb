package watcher

import (
	"errors"
	"log/slog"
	"time"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// Start says where a watcher without a usable saved position starts.
type Start int

const (
	// FromPosition starts at the consumer's saved position, or at the
	// beginning of the log when none was saved. It is the default.
	FromPosition Start = iota
	// FromBeginning starts at the oldest segment still in the log, ignoring
	// any saved position.
	FromBeginning
	// FromNow sends only samples newer than the watcher's start, from the
	// newest segment on: upstream Prometheus's behaviour.
	FromNow
)

// String returns "position", "beginning" or "now".
func (s Start) String() string {
	switch s {
	case FromBeginning:
		return "beginning"
	case FromNow:
		return "now"
	}
	return "position"
}

// ParseStart accepts "position" (or ""), "beginning" and "now".
func ParseStart(s string) (Start, error) {
	switch s {
	case "", "position":
		return FromPosition, nil
	case "beginning":
		return FromBeginning, nil
	case "now":
		return FromNow, nil
	}
	return 0, errors.New(`watcher: start must be "position", "beginning" or "now"`)
}

// Options configure a Watcher.
type Options struct {
	// Dir is the log directory (for a Prometheus server, its data/wal).
	Dir string
	// Name identifies the consumer in metrics and logs.
	Name string
	// FS is the filesystem; nil means the real one.
	FS wal.FS
	// Start chooses where to begin; see Start.
	Start Start
	// NotBefore, when not zero, is a time (ms since the epoch) no sample
	// older than or at which is sent, whatever Start is. FromNow uses it as
	// its start time when set, so that a watcher started later for the
	// same endpoints (after a read error, or for one that left its group)
	// sends what the first one would have; unset, FromNow takes the time
	// it starts.
	NotBefore int64
	// Positions keeps the acknowledged position; nil keeps none (a restart
	// then begins as Start says with no saved position).
	Positions PositionStore
	// SaveInterval is how often the acknowledged position is saved
	// (default 1s: a restart after a crash resends at most about a
	// second of what was acknowledged; a save is two small fsyncs). It is
	// also saved when Run returns.
	SaveInterval time.Duration
	// PollInterval is how often the watcher looks for new data when no
	// notification arrives (default 250ms without file-system
	// notifications, 5s with them).
	PollInterval time.Duration
	// CheckpointInterval is how often it looks for a new checkpoint
	// (default 5s, upstream's).
	CheckpointInterval time.Duration
	// SendExemplars and SendHistograms choose what is handed to the
	// consumer besides float samples; series and metadata always are.
	SendExemplars, SendHistograms bool
	// Metrics are shared by the watchers of one process; nil makes
	// unregistered ones.
	Metrics *Metrics
	// Logger receives state changes and losses; nil discards.
	Logger *slog.Logger
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
	// StopAtEnd makes Run return ErrReachedEnd once every segment present
	// has been read to its end, instead of waiting for the writer: for a
	// log no one writes any more (a replay, a backfill).
	StopAtEnd bool
	// StopAt, when set, makes Run return ErrReachedEnd once everything
	// before this position was handed over: records that start at it or
	// after are not (a consumer catching up to another that is there).
	StopAt *record.Position
	// Committed, when set, returns where the last record its writer
	// committed ends (walship's agent storage: storage.DB.Committed). The
	// watcher reads nothing beyond it, and takes a segment as finished
	// only once it lies before it: the bytes of a write that failed, which
	// the writer cuts back and writes over, are never read. Without it
	// every byte in the files is read as it appears (a Prometheus server's
	// log), and bytes that change under the reader are read again before
	// they count as damage.
	Committed func() record.Position
	// Backfill is for shipping a whole log that is no longer written (a
	// replay): before handing over anything, the watcher learns every
	// series record of every segment, so samples whose series record comes
	// later in the log are not dropped as unknown, and it hands over the
	// samples, histograms and exemplars kept in the newest checkpoint
	// first. Use it with FromBeginning.
	Backfill bool
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("watcher: no WAL directory")
	}
	if o.FS == nil {
		o.FS = wal.OS
	}
	if o.SaveInterval <= 0 {
		o.SaveInterval = time.Second
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 5 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}
