package remote

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/config"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// endpoint is one remote_write entry: its client, its durable position
// and the names its metrics carry. A lane of a pipeline (one queue, fed by
// the pipeline's watcher) ships to it, alone or with the entries of its
// group whose requests are the same bytes.
type endpoint struct {
	name, url string // metric labels, as upstream sets them
	hash      string // of its configuration
	key       string // names its position file (positionKey)
	cfg       *config.RemoteWriteConfig
	sender    *swapSender
	positions *trackedPositions
	proto     queue.Protocol
	rkey      string               // requestKey: entries with the same one share a lane
	lane      atomic.Pointer[lane] // the one shipping to it now
}

// newEndpoint builds an entry's client side and position store without
// starting anything, so that ApplyConfig can refuse a bad entry before it
// stops a running one.
func (s *Storage) newEndpoint(rw *config.RemoteWriteConfig, name, hash, key, rkey string, client *Client) (*endpoint, error) {
	if err := queue.CheckConfig(rw.QueueConfig); err != nil {
		return nil, fmt.Errorf("remote %q: %w", name, err)
	}
	ep := &endpoint{
		name:      name,
		url:       rw.URL.Redacted(),
		hash:      hash,
		key:       key,
		rkey:      rkey,
		cfg:       rw,
		sender:    &swapSender{},
		positions: &trackedPositions{},
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
	return ep, nil
}

// target is the endpoint's name for the queue metrics.
func (ep *endpoint) target() queue.Target { return queue.Target{Name: ep.name, URL: ep.url} }

// highestSent is the newest sample timestamp the endpoint accepted.
func (ep *endpoint) highestSent() int64 {
	if l := ep.lane.Load(); l != nil {
		return l.highestSent()
	}
	return 0
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
// position loaded or saved, for AckedPositions. store nil keeps nothing
// durable: a reload's restart then resumes from the last saved in memory.
type trackedPositions struct {
	store watcher.PositionStore
	mu    sync.Mutex
	last  record.Position
	saved bool // last was saved by this process
}

// Load returns the stored position; without a store, the last one saved
// by this process, if any.
func (p *trackedPositions) Load() (record.Position, bool, error) {
	if p.store == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.last, p.saved, nil
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
	p.last, p.saved = pos, true
	p.mu.Unlock()
	return nil
}

func (p *trackedPositions) acked() record.Position {
	pos, _ := p.savedHere()
	return pos
}

// savedHere returns the last position this process loaded or saved, and
// false when it saved none.
func (p *trackedPositions) savedHere() (record.Position, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.saved
}
