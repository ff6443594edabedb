package storage

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// Defaults of Options, the values upstream's agent uses.
const (
	DefaultTruncateFrequency = 2 * time.Hour
	DefaultMinWALTime        = 5 * time.Minute
	DefaultMaxWALTime        = 4 * time.Hour
)

// Options configure a DB. The zero value is usable: snappy-compressed
// 128 MiB segments on the real filesystem, truncation every two hours, no
// disk budget, nothing protected from truncation.
type Options struct {
	// Logger receives the DB's messages; nil discards them.
	Logger *slog.Logger
	// Registerer receives the DB's and the log's metrics; nil registers
	// nothing. Everything registered is unregistered by Close.
	Registerer prometheus.Registerer
	// FS is the filesystem; nil means wal.OS.
	FS wal.FS
	// SegmentSize is the size of a WAL segment; 0 means 128 MiB.
	SegmentSize int
	// Compression is applied to records; "" means snappy, as Prometheus's
	// --storage.agent.wal-compression (on by default) does.
	Compression wal.Compression
	// TruncateFrequency is how often Run checkpoints and truncates the
	// log; 0 means two hours.
	TruncateFrequency time.Duration
	// MinWALTime and MaxWALTime bound how long a series may go without a
	// sample before Run forgets it (like --storage.agent.retention.min-time
	// and max-time): MinWALTime when every endpoint is caught up, MaxWALTime
	// while one lags behind. 0 means 5m and 4h.
	MinWALTime, MaxWALTime time.Duration
	// MaxWALBytes is the disk budget of the log directory. When the log
	// grows beyond it, the oldest segments are deleted even if an endpoint
	// has not sent them, and the loss is counted. 0 means unlimited.
	MaxWALBytes int64
	// Notify is called after every successful Commit (it wakes the
	// watchers); it may be nil. It must not block and must not call back
	// into the DB.
	Notify func()
	// Acked returns, per endpoint name, the WAL position that endpoint has
	// acknowledged: everything before it was sent. Truncation never deletes
	// a segment at or after the lowest of them (unless the disk budget
	// forces it). It may be nil, and may return an empty map: then nothing
	// is protected. It is called from the truncating goroutine and must be
	// safe for that.
	Acked func() map[string]record.Position
}

func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FS == nil {
		o.FS = wal.OS
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = wal.DefaultSegmentSize
	}
	if o.SegmentSize < 0 || o.SegmentSize%wal.PageSize != 0 {
		return o, fmt.Errorf("storage: invalid segment size %d: must be a positive multiple of %d", o.SegmentSize, wal.PageSize)
	}
	if o.Compression == "" {
		o.Compression = wal.Snappy
	}
	c, err := wal.ParseCompression(string(o.Compression))
	if err != nil {
		return o, fmt.Errorf("storage: %w", err)
	}
	o.Compression = c
	if o.TruncateFrequency <= 0 {
		o.TruncateFrequency = DefaultTruncateFrequency
	}
	if o.MinWALTime <= 0 {
		o.MinWALTime = DefaultMinWALTime
	}
	if o.MaxWALTime <= 0 {
		o.MaxWALTime = DefaultMaxWALTime
	}
	if o.MinWALTime > o.MaxWALTime {
		o.MaxWALTime = o.MinWALTime
	}
	if o.MaxWALBytes < 0 {
		return o, fmt.Errorf("storage: invalid MaxWALBytes %d", o.MaxWALBytes)
	}
	return o, nil
}
