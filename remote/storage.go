package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"go.yaml.in/yaml/v2"

	"github.com/walship/walship/queue"
	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// DefaultFlushDeadline is how long Close and a reload wait for queued
// samples to be sent, as Prometheus's --storage.remote.flush-deadline.
const DefaultFlushDeadline = time.Minute

// Options configure a Storage.
type Options struct {
	// WALDir is the log to ship: data/wal of a Prometheus server, or the
	// wal directory of walship's agent storage.
	WALDir string
	// PositionsDir holds each endpoint's acknowledged position, one small
	// file per remote_write entry; empty keeps none (every start then begins
	// as Start says). A sidecar keeps it outside the WAL it reads.
	PositionsDir string
	// FS is the filesystem; nil means the real one.
	FS wal.FS
	// Start is where endpoints begin: watcher.FromPosition (the default)
	// resumes at the saved position, else the oldest data; FromBeginning
	// and FromNow ignore saved positions (see watcher.Start).
	Start watcher.Start
	// FlushDeadline bounds how long Close and a reload wait for queued
	// samples to be sent; DefaultFlushDeadline when zero.
	FlushDeadline time.Duration
	// StopAtEnd makes every endpoint stop once it has shipped the whole log
	// and had it acknowledged (a replay); Done is closed then. The watchers
	// then also backfill (watcher.Options.Backfill): the newest checkpoint's
	// samples are shipped, and series recorded late in the log are known.
	StopAtEnd bool
	// Committed, when set, says how far the WAL's writer committed: the
	// watchers read no further (watcher.Options.Committed). walship's agent
	// passes its storage's (storage.DB.Committed).
	Committed func() record.Position
	// GroupLag is how long the members of a group (entries whose requests
	// are the same bytes, shipped by one pipeline) wait for a late member
	// before it leaves the group; DefaultGroupLag when zero.
	GroupLag time.Duration
	// RegroupAfter is how long the members of a group that split (some
	// left it, see GroupLag) must have kept up with each other before the
	// group re-forms, restarted as a reload restarts it;
	// DefaultRegroupAfter when zero. Keep it well above the watchers'
	// save interval (a second): whether members kept up is judged by
	// their saved positions. Not with StopAtEnd.
	RegroupAfter time.Duration
	// ClientOptions are passed to every endpoint's Client.
	ClientOptions ClientOptions
	// Logger receives state changes and losses; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Storage ships one WAL to every remote_write endpoint of a Prometheus
// configuration: one watcher and one queue per group of entries sent the
// same requests (see the package doc), each entry with its own durable
// position. It implements storage.Storage so that a Prometheus
// fork can put it in its fanout storage where upstream's remote storage
// was; its Appender only tracks timestamps (the data reaches the endpoints
// through the WAL).
type Storage struct {
	opts     Options
	log      *slog.Logger
	queueM   *queue.Metrics
	watcherM *watcher.Metrics
	appendM  *appendMetrics
	// labels are the endpoints' interned labels: the WAL's labels once,
	// whatever the number of endpoints.
	labels *queue.Labels

	// applyMu serialises ApplyConfig and Close, which may wait for a
	// flush; mu guards the fields below only for short moments, so that
	// Notify (called on the TSDB's commit path) and AckedPositions never
	// wait for a flush.
	applyMu sync.Mutex

	mu             sync.Mutex
	endpoints      map[string]*endpoint // by config hash
	pipelines      []*pipeline          // shipping to them
	externalLabels labels.Labels
	warnedRead     bool
	applied        bool
	closed         bool

	// shipped is, with --wal.start=now, when each entry of the
	// configuration (by position key) started shipping (see plan).
	// Guarded by applyMu.
	shipped map[string]int64
	done    chan struct{} // StopAtEnd: closed when all endpoints finished

	// The regrouper (regroup.go): its context, ended by Close; done,
	// closed when it returned (nil until ApplyConfig started it); and the
	// count of groups it re-formed.
	regroupCtx    context.Context
	regroupCancel context.CancelFunc
	regroupDone   chan struct{}
	regroups      prometheus.Counter
}

var _ promstorage.Storage = (*Storage)(nil)

// New returns a Storage with no endpoints; ApplyConfig adds them.
func New(opts Options) *Storage {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FS == nil {
		opts.FS = wal.OS
	}
	if opts.FlushDeadline <= 0 {
		opts.FlushDeadline = DefaultFlushDeadline
	}
	if opts.GroupLag <= 0 {
		opts.GroupLag = DefaultGroupLag
	}
	if opts.RegroupAfter <= 0 {
		opts.RegroupAfter = DefaultRegroupAfter
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Storage{
		opts:          opts,
		log:           opts.Logger,
		queueM:        queue.NewMetrics(opts.Registerer),
		watcherM:      watcher.NewMetrics(opts.Registerer),
		appendM:       newAppendMetrics(opts.Registerer),
		labels:        queue.NewLabels(),
		endpoints:     map[string]*endpoint{},
		done:          make(chan struct{}),
		regroupCtx:    ctx,
		regroupCancel: cancel,
		regroups:      newRegroupsCounter(opts.Registerer),
	}
}

// ReadyScrapeManager stands for upstream's remote.ReadyScrapeManager in
// NewStorage's signature. walship takes metadata from the WAL, not from
// scrape targets, so it is not used.
type ReadyScrapeManager = any

// NewStorage has the signature of upstream's remote.NewStorage, so that a
// Prometheus fork switches to walship by changing this one call: it ships
// dir/wal and keeps positions in dir/walship-positions. stCallback, sm and
// enableTypeAndUnitLabels are accepted and not used (remote read is not
// supported; metadata comes from the WAL).
func NewStorage(l *slog.Logger, reg prometheus.Registerer, stCallback func() (int64, error), dir string, flushDeadline time.Duration, sm ReadyScrapeManager, enableTypeAndUnitLabels bool) *Storage {
	_, _, _ = stCallback, sm, enableTypeAndUnitLabels
	return New(Options{
		WALDir:        filepath.Join(dir, "wal"),
		PositionsDir:  filepath.Join(dir, "walship-positions"),
		FlushDeadline: flushDeadline,
		Logger:        l,
		Registerer:    reg,
	})
}

// ApplyConfig makes the running endpoints those of conf.RemoteWriteConfigs.
// Entries whose requests would be the same bytes (see group.go) are
// shipped by one pipeline. A pipeline whose entries are all unchanged keeps
// running (with new HTTP clients, so that changed credentials apply); the
// others are flushed within the flush deadline and stopped, and their
// entries that remain start again from their saved positions, so nothing
// is lost. A change of the external labels restarts every entry. Every
// entry is built (client, positions directory) before anything stops:
// when one is invalid nothing changes and the error says which. With
// StopAtEnd only the first configuration applies.
func (s *Storage) ApplyConfig(conf *config.Config) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	closed, applied, running, oldLabels := s.closed, s.applied, s.pipelines, s.externalLabels
	warnRead := len(conf.RemoteReadConfigs) > 0 && !s.warnedRead
	s.warnedRead = s.warnedRead || warnRead
	s.mu.Unlock()
	switch {
	case closed:
		return errors.New("remote: storage is closed")
	case applied && s.opts.StopAtEnd:
		return errors.New("remote: a storage that stops at the end of the log takes one configuration")
	}
	if warnRead {
		s.log.Warn("remote_read is not supported by walship; the remote_read section is ignored")
	}
	sameLabels := labels.Equal(conf.GlobalConfig.ExternalLabels, oldLabels)

	// Unnamed entries are keyed by their URL; those that share one could
	// only be told apart by their order, which a reload may change.
	unnamedURLs := map[string]int{}
	for _, rw := range conf.RemoteWriteConfigs {
		if rw.Name == "" && rw.URL != nil {
			unnamedURLs[rw.URL.Redacted()]++
		}
	}
	for u, n := range unnamedURLs {
		if n > 1 {
			s.log.Warn("remote_write entries without a name share a URL: each keeps its position under a hash of its configuration, so changing one makes it resend the WAL from its oldest data; give them names",
				"url", u, "entries", n)
		}
	}

	// Build everything first: a bad entry must leave the running ones alone.
	type entry struct {
		rw                    *config.RemoteWriteConfig
		hash, name, key, rkey string
		client                *Client
	}
	var entries []entry
	next := make(map[string]*endpoint, len(conf.RemoteWriteConfigs))
	fail := func(err error) error {
		for _, e := range entries {
			e.client.Close()
		}
		return err
	}
	seen := map[string]bool{}
	for _, rw := range conf.RemoteWriteConfigs {
		hash, err := configHash(rw)
		if err != nil {
			return fail(err)
		}
		if seen[hash] {
			return fail(fmt.Errorf("remote: duplicate remote write configs are not allowed, found duplicate for URL: %s", rw.URL))
		}
		seen[hash] = true
		rkey, err := requestKey(rw)
		if err != nil {
			return fail(err)
		}
		name := rw.Name
		if name == "" {
			name = hash[:6]
		}
		client, err := NewClient(name, rw, s.opts.ClientOptions)
		if err != nil {
			return fail(err)
		}
		entries = append(entries, entry{rw, hash, name, positionKey(rw, hash, unnamedURLs), rkey, client})
	}
	// A running pipeline keeps running when every entry it started with
	// stays; the others stop, and their entries that stay go into new
	// pipelines with the new entries.
	var kept, stopped []*pipeline
	for _, p := range running {
		keep := sameLabels
		for _, ep := range p.members {
			keep = keep && seen[ep.hash]
		}
		if !keep {
			stopped = append(stopped, p)
			continue
		}
		kept = append(kept, p)
		for _, ep := range p.members {
			next[ep.hash] = ep
		}
	}
	for _, p := range stopped {
		for _, ep := range p.members {
			if sameLabels && seen[ep.hash] {
				next[ep.hash] = ep // carried over to a new pipeline
			}
		}
	}
	inKept := map[*endpoint]bool{}
	for _, p := range kept {
		for _, ep := range p.members {
			inKept[ep] = true
		}
	}
	var starting []*endpoint // in configuration order
	for _, e := range entries {
		ep := next[e.hash]
		if ep == nil {
			var err error
			if ep, err = s.newEndpoint(e.rw, e.name, e.hash, e.key, e.rkey, e.client); err != nil {
				return fail(err)
			}
			next[e.hash] = ep
		}
		if !inKept[ep] {
			starting = append(starting, ep)
		}
	}

	// Swap the set, then stop what changed or went away (outside mu: a
	// flush may take a minute), then start the new pipelines.
	s.mu.Lock()
	s.endpoints, s.pipelines = next, kept
	s.externalLabels, s.applied = conf.GlobalConfig.ExternalLabels, true
	s.mu.Unlock()
	for _, e := range entries {
		if ep := next[e.hash]; ep.sender.client.Load() != e.client {
			ep.sender.swap(e.client)
		}
	}
	var stopping sync.WaitGroup
	for _, p := range stopped {
		stopping.Go(p.stop)
	}
	stopping.Wait()
	if len(stopped) > 0 {
		s.letGo()
	}
	for _, p := range stopped {
		for _, ep := range p.members {
			if next[ep.hash] != ep {
				s.retire(ep)
			}
		}
	}
	env := &shipping{opts: s.opts, log: s.log, queueM: s.queueM, watcherM: s.watcherM, labels: s.labels, external: conf.GlobalConfig.ExternalLabels}
	started := s.start(env, s.plan(starting, next))
	if s.opts.StopAtEnd {
		go s.waitAllDone(started)
	} else {
		s.startRegrouping()
	}
	return nil
}

// start starts a pipeline for each group. Called under applyMu.
func (s *Storage) start(env *shipping, groups []plannedGroup) []*pipeline {
	var started []*pipeline
	for _, g := range groups {
		p := newPipeline(env, g.members, g.start, nil, g.notBefore)
		p.catchUp, p.behind = g.at, g.behind
		p.startUnder(context.Background())
		started = append(started, p)
	}
	s.mu.Lock()
	s.pipelines = append(s.pipelines, started...)
	s.mu.Unlock()
	return started
}

// plan sorts the endpoints about to start into groups; current are all
// the configuration's. With --wal.start=now, an entry's "now" is when it
// started shipping: one that has shipped since, in this configuration and
// the ones before it without a pause, and has a position saved (whose
// group a reload restarts, say) resumes there, sending nothing older than
// its now, while one the configuration adds (or adds back) starts at the
// time of this call. Called under applyMu.
func (s *Storage) plan(starting []*endpoint, current map[string]*endpoint) []plannedGroup {
	if s.opts.Start != watcher.FromNow {
		return groupOf(starting, s.opts.Start)
	}
	now := time.Now().UnixMilli()
	shipped := make(map[string]int64, len(current))
	for _, ep := range current {
		if since, ok := s.shipped[ep.key]; ok {
			shipped[ep.key] = since // entries removed are forgotten
		}
	}
	s.shipped = shipped
	var sinces []int64 // in order of first appearance
	resumed := map[int64][]*endpoint{}
	var fresh []*endpoint
	for _, ep := range starting {
		since, ok := shipped[ep.key]
		if ok { // a file from before it was (re)added is not looked at
			_, saved, err := ep.positions.Load()
			ok = saved && err == nil
		}
		if !ok {
			fresh, shipped[ep.key] = append(fresh, ep), now
			continue
		}
		if resumed[since] == nil {
			sinces = append(sinces, since)
		}
		resumed[since] = append(resumed[since], ep)
	}
	var groups []plannedGroup
	for _, since := range sinces {
		for _, g := range groupOf(resumed[since], watcher.FromPosition) {
			g.notBefore = since
			groups = append(groups, g)
		}
	}
	for _, g := range groupOf(fresh, watcher.FromNow) {
		g.notBefore = now
		groups = append(groups, g)
	}
	return groups
}

// letGo frees what the queues of stopped pipelines held before new ones
// read the WAL's series again: the label table lets go of their series
// (Labels.Sweep; without it they stayed until the next series reset), a
// collection frees them and finds the labels nothing else holds, and a
// second sweep releases those. Without the collection the new pipelines'
// series would pile up on the old garbage: 2.5 minutes after a regroup
// at 1M series the sidecar's heap in use was 218 MiB, against 117 with it.
// Called under applyMu, after a reload or a regroup stopped pipelines.
func (s *Storage) letGo() {
	s.labels.Sweep()
	runtime.GC()
	s.labels.Sweep()
}

// retire deletes the queue metrics of an endpoint that went away (a replay
// reads them until Close) and closes its client.
func (s *Storage) retire(ep *endpoint) {
	s.queueM.Delete(ep.name, ep.url)
	ep.sender.close()
}

// positionKey names an entry's position file: its name, or its URL for an
// unnamed one, so that a changed entry resumes where it stopped. Unnamed
// entries that share a URL (tenants told apart by a header, say) are keyed
// by URL and configuration hash instead: keyed by their order, a reload
// that reordered them would resume each from the other's position, and
// the one behind would skip what it never sent. Any change to such an
// entry then starts it afresh from the oldest data in the WAL (sent
// again, not lost); a name avoids that.
func positionKey(rw *config.RemoteWriteConfig, hash string, unnamedURLs map[string]int) string {
	if rw.Name != "" {
		return rw.Name
	}
	key := rw.URL.Redacted()
	if unnamedURLs[key] > 1 {
		key += "#" + hash[:12]
	}
	return key
}

// positionFile is where the position of the entry with this key is kept.
func (s *Storage) positionFile(key string) string {
	sum := sha256.Sum256([]byte(key))
	safe := make([]byte, 0, 40)
	for i := 0; i < len(key) && len(safe) < 40; i++ {
		switch c := key[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			safe = append(safe, c)
		default:
			safe = append(safe, '_')
		}
	}
	return filepath.Join(s.opts.PositionsDir, fmt.Sprintf("%s-%s.json", safe, hex.EncodeToString(sum[:4])))
}

// configHash identifies an entry's configuration (secrets excluded, as
// upstream does; a changed secret reaches the kept entry through its new
// client).
func configHash(rw *config.RemoteWriteConfig) (string, error) {
	b, err := yaml.Marshal(rw)
	if err != nil {
		return "", fmt.Errorf("remote: hashing remote_write config: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func (s *Storage) waitAllDone(ps []*pipeline) {
	for _, p := range ps {
		<-p.finished
	}
	close(s.done)
}

// Done is closed, with Options.StopAtEnd, once every endpoint has shipped
// the whole log and the endpoints acknowledged it (or gave up on parts of
// it for good, as the metrics count).
func (s *Storage) Done() <-chan struct{} { return s.done }

// Notify tells every endpoint's watcher that the WAL was written: it reads
// at once instead of at its next poll. A Prometheus fork passes the Storage
// to its TSDB's SetWriteNotified.
func (s *Storage) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pipelines {
		p.notify()
	}
}

// AckedPositions returns, per endpoint, the last durably saved position:
// everything before it was acknowledged. An endpoint that has not loaded or
// saved a position yet reports the start of the log. Agent storage uses it
// to keep unacknowledged segments.
func (s *Storage) AckedPositions() map[string]record.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]record.Position, len(s.endpoints))
	for _, ep := range s.endpoints {
		out[ep.name] = ep.positions.acked()
	}
	return out
}

// LowestSentTimestamp returns the lowest of the endpoints' highest sent
// sample timestamps (ms), as upstream's remote storage does; 0 before any
// endpoint sent anything.
func (s *Storage) LowestSentTimestamp() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lowest int64
	first := true
	for _, ep := range s.endpoints {
		ts := ep.highestSent()
		if first || ts < lowest {
			lowest, first = ts, false
		}
	}
	return lowest
}

// StartTime is model.Latest: the remote storage holds nothing to query.
func (*Storage) StartTime() (int64, error) { return int64(model.Latest), nil }

// Querier returns an empty querier: remote read is not supported.
func (*Storage) Querier(_, _ int64) (promstorage.Querier, error) {
	return promstorage.NoopQuerier(), nil
}

// ChunkQuerier returns an empty querier: remote read is not supported.
func (*Storage) ChunkQuerier(_, _ int64) (promstorage.ChunkQuerier, error) {
	return promstorage.NoopChunkedQuerier(), nil
}

// Close flushes every endpoint within the flush deadline and stops them.
// What was not sent stays in the WAL past the saved positions and is sent
// after the next start.
func (s *Storage) Close() error {
	defer s.stopRegrouping()
	s.regroupCancel()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	running := s.pipelines
	s.endpoints, s.pipelines = map[string]*endpoint{}, nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range running {
		wg.Go(p.stop)
	}
	wg.Wait()
	for _, p := range running {
		for _, ep := range p.members {
			s.retire(ep)
		}
	}
	return nil
}
