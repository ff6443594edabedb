package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// watcherRetryInterval is how long an endpoint waits before it reads the
// WAL again after its watcher stopped on an error (the directory vanished,
// a segment could not be opened).
const watcherRetryInterval = 5 * time.Second

// endpoint is one remote_write entry at work: a queue sending through a
// Client, fed by a watcher of the WAL. run is its one goroutine (plus the
// queue's); stop ends it.
type endpoint struct {
	name, url string // metric labels, as upstream sets them
	cfg       *config.RemoteWriteConfig
	external  labels.Labels
	storage   *Storage
	log       *slog.Logger
	sender    *swapSender
	positions *trackedPositions
	proto     queue.Protocol

	q           atomic.Pointer[queue.Manager] // the current attempt's
	highestPrev atomic.Int64                  // highest sent by earlier attempts' queues

	mu sync.Mutex
	w  *watcher.Watcher // the current one, for Notify

	ctx      context.Context
	cancel   context.CancelFunc
	finished chan struct{} // closed when run returns
}

// newEndpoint builds an entry's client side, queue and position store
// without starting anything, so that ApplyConfig can refuse a bad entry
// before it stops a running one.
func (s *Storage) newEndpoint(rw *config.RemoteWriteConfig, name, key string, client *Client, external labels.Labels) (*endpoint, error) {
	ep := &endpoint{
		name:      name,
		url:       rw.URL.Redacted(),
		cfg:       rw,
		external:  external,
		storage:   s,
		log:       s.log.With("remote_name", name, "url", rw.URL.Redacted()),
		sender:    &swapSender{},
		positions: &trackedPositions{},
		finished:  make(chan struct{}),
	}
	ep.sender.swap(client)
	if dir := s.opts.PositionsDir; dir != "" {
		if err := s.opts.FS.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("remote %q: positions directory: %w", name, err)
		}
		ep.positions.store = watcher.NewFilePositions(s.opts.FS, s.positionFile(key))
	}
	ep.proto = queue.RW1
	if rw.ProtobufMessage == remoteapi.WriteV2MessageType {
		ep.proto = queue.RW2
	}
	q, err := ep.newQueue()
	if err != nil {
		return nil, err
	}
	ep.q.Store(q)
	ep.ctx, ep.cancel = context.WithCancel(context.Background())
	return ep, nil
}

// start runs the endpoint in its goroutine.
func (ep *endpoint) start() { go ep.run(ep.ctx) }

func (ep *endpoint) newQueue() (*queue.Manager, error) {
	q, err := queue.New(queue.Options{
		Name:           ep.name,
		URL:            ep.url,
		Config:         ep.cfg.QueueConfig,
		Metadata:       ep.cfg.MetadataConfig,
		Protocol:       ep.proto,
		ExternalLabels: ep.external,
		RelabelConfigs: ep.cfg.WriteRelabelConfigs,
		Sender:         ep.sender,
		Metrics:        ep.storage.queueM,
		Logger:         ep.storage.log, // the queue adds remote_name and url
		Labels:         ep.storage.labels,
	})
	if err != nil {
		return nil, fmt.Errorf("remote %q: %w", ep.name, err)
	}
	return q, nil
}

// run ships until ctx ends (or, with StopAtEnd, until the whole log was
// shipped). When reading the WAL fails, the attempt ends as a stop does
// and a new one starts from the saved position after a pause.
func (ep *endpoint) run(ctx context.Context) {
	defer close(ep.finished)
	q := ep.q.Load()
	for {
		err := ep.attempt(ctx, q)
		ep.highestPrev.Store(max(ep.highestPrev.Load(), q.HighestSentTimestamp()))
		if err == nil || errors.Is(err, watcher.ErrReachedEnd) || ctx.Err() != nil {
			return
		}
		ep.log.Error("Reading the WAL failed; retrying from the saved position", "err", err, "retry_in", watcherRetryInterval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(watcherRetryInterval):
		}
		if q, err = ep.newQueue(); err != nil {
			ep.log.Error("Remote write endpoint stopped", "err", err)
			return
		}
		ep.q.Store(q)
	}
}

// attempt runs q fed by a new watcher until ctx ends, the log ends
// (StopAtEnd) or reading fails; then it flushes q, saves the position the
// flush reached and stops q. The flush is bounded by the flush deadline;
// after the end of the log it waits for everything to be acknowledged,
// and for at most the flush deadline more once ctx ends.
func (ep *endpoint) attempt(ctx context.Context, q *queue.Manager) error {
	opts := ep.storage.opts
	w, err := watcher.New(q, watcher.Options{
		Dir:            opts.WALDir,
		Name:           ep.name,
		FS:             opts.FS,
		Start:          opts.Start,
		Positions:      ep.positions,
		SendExemplars:  ep.cfg.SendExemplars,
		SendHistograms: ep.cfg.SendNativeHistograms,
		Metrics:        ep.storage.watcherM,
		Logger:         ep.log,
		StopAtEnd:      opts.StopAtEnd,
		Backfill:       opts.StopAtEnd,
	})
	if err != nil {
		return err
	}
	qctx, stopQueue := context.WithCancel(context.Background())
	queueDone := make(chan error, 1)
	go func() { queueDone <- q.Run(qctx) }()
	ep.mu.Lock()
	ep.w = w
	ep.mu.Unlock()

	runErr := w.Run(ctx)

	reachedEnd := errors.Is(runErr, watcher.ErrReachedEnd)
	flushCtx, cancelFlush := flushContext(ctx, reachedEnd, opts.FlushDeadline)
	if err := q.Flush(flushCtx); err != nil {
		ep.log.Warn("Remote write flush did not send everything; the rest is sent after the next start", "err", err)
	} else if reachedEnd {
		// The whole log was sent: RW2 exemplars still waiting for a next
		// sample of their series will not get one.
		q.DropHeld()
	}
	cancelFlush()
	w.SavePosition()
	stopQueue()
	if err := <-queueDone; err != nil {
		ep.log.Error("Remote write queue stopped with an error", "err", err)
	}
	return runErr
}

// flushContext bounds a flush: by deadline from now, or, when the whole
// log was read and ctx is still alive, until deadline after ctx ends.
func flushContext(ctx context.Context, reachedEnd bool, deadline time.Duration) (context.Context, context.CancelFunc) {
	if !reachedEnd || ctx.Err() != nil {
		return context.WithTimeout(context.Background(), deadline)
	}
	fctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(deadline, cancel)
		context.AfterFunc(fctx, func() { t.Stop() })
	})
	return fctx, func() { stop(); cancel() }
}

// notify wakes the current watcher.
func (ep *endpoint) notify() {
	ep.mu.Lock()
	w := ep.w
	ep.mu.Unlock()
	if w != nil {
		w.Notify()
	}
}

// highestSent is the newest sample timestamp the endpoint accepted.
func (ep *endpoint) highestSent() int64 {
	return max(ep.highestPrev.Load(), ep.q.Load().HighestSentTimestamp())
}

// stop ends run, flushing within the flush deadline, deletes the entry's
// queue metrics (a replay reads them until Close) and closes the client.
// Only started endpoints are stopped (ApplyConfig starts every entry it
// keeps before it returns).
func (ep *endpoint) stop() {
	ep.cancel()
	<-ep.finished
	ep.storage.queueM.Delete(ep.name, ep.url)
	ep.sender.close()
}

// swapSender is the queue's Sender; ApplyConfig swaps a new Client in when
// an unchanged entry gets fresh credentials.
type swapSender struct {
	client atomic.Pointer[Client]
}

func (s *swapSender) Send(ctx context.Context, req *queue.Request, attempt int) (queue.Written, error) {
	return s.client.Load().Send(ctx, req, attempt)
}

func (s *swapSender) swap(c *Client) {
	if old := s.client.Swap(c); old != nil {
		old.Close()
	}
}

func (s *swapSender) close() {
	if c := s.client.Load(); c != nil {
		c.Close()
	}
}

// trackedPositions is an endpoint's position store that remembers the last
// position loaded or saved, for AckedPositions. store nil keeps nothing.
type trackedPositions struct {
	store watcher.PositionStore
	mu    sync.Mutex
	last  record.Position
}

func (p *trackedPositions) Load() (record.Position, bool, error) {
	if p.store == nil {
		return record.Position{}, false, nil
	}
	pos, ok, err := p.store.Load()
	if err == nil && ok {
		p.mu.Lock()
		p.last = pos
		p.mu.Unlock()
	}
	return pos, ok, err
}

func (p *trackedPositions) Save(pos record.Position) error {
	if p.store != nil {
		if err := p.store.Save(pos); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.last = pos
	p.mu.Unlock()
	return nil
}

func (p *trackedPositions) acked() record.Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}
