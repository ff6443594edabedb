package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/prometheus/common/model"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// DB is a WAL-only storage for agent-style deployments: appenders write
// records to the log in dir/wal and nothing else; watchers ship the log.
// It implements upstream's storage.Appendable.
//
// A DB is safe for concurrent use: many appenders may be used at once (each
// appender by one goroutine), while Run truncates in the background.
type DB struct {
	opts   Options
	dir    string // the log directory, <path>/wal
	logger *slog.Logger
	reg    *trackingRegisterer

	series  *seriesTable
	metrics *metrics

	appenders sync.Pool

	// mu guards the writer and everything written with it: memSeries.logged,
	// deleted, the size accounting and closed.
	mu      sync.Mutex
	w       *wal.Writer
	closed  bool
	deleted map[record.Ref]int // ref of a removed series -> last segment that may reference it
	size    sizeAccount
	// seriesRec is the buffer series records are encoded into, one for all
	// appenders: a first scrape's series record is about 300 bytes a
	// series, and pooled appenders each keeping theirs held 300 MB at 1M
	// series (667 targets scraped at once).
	seriesRec []byte

	// truncMu serialises truncations (and Close against them).
	truncMu sync.Mutex

	// committed is where the last record the writer logged without error
	// ends (Committed).
	committed atomic.Pointer[record.Position]

	budgetC chan struct{} // a commit found the log over its budget
	closeC  chan struct{} // closed by Close

	onTruncate func() // test hook, called after every truncation attempt by Run
}

// Open opens the storage at dir (--storage.agent.path): the log lives in
// dir/wal. It replays the newest checkpoint and the segments after it to
// rebuild the series, so the same labels keep their ref; a damaged or torn
// tail of the newest segment is cut off with wal.Repair (the cut bytes are
// kept in a .broken file) and writing goes on in a new segment; damage in
// an older segment is passed over to the next intact record, never
// deleted. Damage in the checkpoint is passed over the same way: the
// series it held there are unknown until scraped again.
func Open(dir string, opts Options) (*DB, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	db := &DB{
		opts:    o,
		dir:     filepath.Join(dir, "wal"),
		logger:  o.Logger,
		reg:     newTrackingRegisterer(o.Registerer),
		series:  newSeriesTable(),
		deleted: map[record.Ref]int{},
		budgetC: make(chan struct{}, 1),
		closeC:  make(chan struct{}),
	}
	db.metrics = newMetrics(db.reg.registerer())
	db.appenders.New = func() any { return &appender{db: db} }

	db.w, err = wal.Open(db.dir, wal.Options{
		FS: o.FS, SegmentSize: o.SegmentSize, Compression: o.Compression,
		Logger: o.Logger, Registerer: db.reg.registerer(),
	})
	if err != nil {
		db.reg.unregisterAll()
		return nil, fmt.Errorf("open wal: %w", err)
	}
	if err := db.replay(); err != nil {
		db.w.Close()
		db.reg.unregisterAll()
		return nil, err
	}
	size, err := db.measure()
	if err != nil {
		db.w.Close()
		db.reg.unregisterAll()
		return nil, err
	}
	db.size.reset(size, db.w.Segment())
	db.metrics.walBytes.Set(float64(size))
	db.commit()
	return db, nil
}

// Committed returns where the last record logged without error ends. A
// reader of the segment being written (a watcher, remote.Options.Committed)
// reads no further: the bytes of a write that failed are cut back and
// written over, and a reader that read them would take what follows for
// damage, or ship records whose commit failed.
func (db *DB) Committed() record.Position { return *db.committed.Load() }

// commit publishes the writer's position as committed. Called with db.mu
// held (or before the DB is shared).
func (db *DB) commit() {
	p := db.w.Position()
	db.committed.Store(&p)
}

// Appender returns an appender; ctx is not used. Each appender must be
// finished with Commit or Rollback and not used afterwards.
func (db *DB) Appender(context.Context) promstorage.Appender {
	return db.appenders.Get().(*appender)
}

// WALDir returns the log directory, <dir>/wal.
func (db *DB) WALDir() string { return db.dir }

// StartTime returns the time of the oldest sample the storage can answer
// queries for: none, as upstream's agent says with model.Latest.
func (*DB) StartTime() (int64, error) { return int64(model.Latest), nil }

// Close waits for a truncation in progress, makes Run return, closes the
// log (padding and syncing its last segment) and unregisters the metrics.
// Appenders committed afterwards fail with ErrClosed.
func (db *DB) Close() error {
	db.truncMu.Lock()
	defer db.truncMu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	db.closed = true
	close(db.closeC)
	err := db.w.Close()
	db.reg.unregisterAll()
	if err != nil && !errors.Is(err, wal.ErrClosed) {
		return fmt.Errorf("close wal: %w", err)
	}
	return nil
}
