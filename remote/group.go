package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/relabel"
	"go.yaml.in/yaml/v2"

	"github.com/walship/walship/wal/record"
	"github.com/walship/walship/watcher"
)

// Entries saved near each other form a group, shipped by one pipeline:
// one watcher reads and decodes the WAL once for all of them. Within a
// group, the entries whose requests would be the same bytes form a lane:
// each series is held once and each request is built and compressed once
// and sent to every member (fanout). What decides the bytes is the
// requestKey; the URL, the HTTP client settings, headers, credentials and
// timeouts do not, and stay each member's own. Lanes with other keys
// (other write_relabel_configs, queue_config, protocol) have queues of
// their own, fed by the group's watcher through a tee. What the watcher
// hands over (exemplars, native histograms) must be the same for the whole
// group (readKey). Entries saved far apart do not group: the group would
// send the one ahead what it has already.

// readKey identifies what an entry's watcher hands to its queue.
func readKey(rw *config.RemoteWriteConfig) string {
	return fmt.Sprintf("exemplars=%t histograms=%t", rw.SendExemplars, rw.SendNativeHistograms)
}

// requestKey identifies what makes an entry's requests what they are.
func requestKey(rw *config.RemoteWriteConfig) (string, error) {
	b, err := yaml.Marshal(struct {
		Relabel       []*relabel.Config     `yaml:"write_relabel_configs,omitempty"`
		Exemplars     bool                  `yaml:"send_exemplars"`
		Histograms    bool                  `yaml:"send_native_histograms"`
		Message       string                `yaml:"protobuf_message"`
		Queue         config.QueueConfig    `yaml:"queue_config"`
		Metadata      config.MetadataConfig `yaml:"metadata_config"`
		NHCBToClassic bool                  `yaml:"convert_nhcb_to_classic"`
	}{rw.WriteRelabelConfigs, rw.SendExemplars, rw.SendNativeHistograms, string(rw.ProtobufMessage), rw.QueueConfig, rw.MetadataConfig, rw.ConvertNHCBToClassic})
	if err != nil {
		return "", fmt.Errorf("remote: hashing remote_write config: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// regroupSlack is how far apart, in one segment, the saved positions of
// entries may be for them to form a group: the group starts at the oldest,
// so the others are sent again what lies between (at most this much of
// the WAL). A member that left its group and caught up with it is saved
// within it of the group at the next stop, and so rejoins at the next
// start; while running, the regrouper re-forms the group of members that
// kept up with each other, however far apart they were saved (regroup.go).
const regroupSlack = 1 << 20

// maxMembers is the most entries one group has (at most what one queue's
// metrics count for).
const maxMembers = 64

// plannedGroup is a group about to start: its members (in configuration
// order), and, when some were saved before the others, where the others
// are and who is behind.
type plannedGroup struct {
	members []*endpoint
	at      *record.Position
	behind  []*endpoint
	start   watcher.Start
	// notBefore, with --wal.start=now, is the time of the members' now
	// (pipeline.notBefore).
	notBefore int64
}

// groupOf sorts eps (in configuration order) into groups: same readKey
// and, when saved positions count (watcher.FromPosition), none saved or
// saved within regroupSlack of the group's first member.
func groupOf(eps []*endpoint, start watcher.Start) []plannedGroup {
	type saved struct {
		key string
		pos record.Position
		ok  bool
	}
	at := make(map[*endpoint]saved, len(eps))
	for _, ep := range eps {
		s := saved{key: readKey(ep.cfg)}
		if start == watcher.FromPosition {
			var err error
			if s.pos, s.ok, err = ep.positions.Load(); err != nil {
				s.key += "\x00" + ep.hash // alone: its watcher reports the error
			}
		}
		at[ep] = s
	}
	near := func(a, b saved) bool {
		if a.key != b.key || a.ok != b.ok {
			return false
		}
		return !a.ok || a.pos.Segment == b.pos.Segment && max(a.pos.Offset-b.pos.Offset, b.pos.Offset-a.pos.Offset) <= regroupSlack
	}
	var groups []plannedGroup
next:
	for _, ep := range eps {
		for i, g := range groups {
			if len(g.members) < maxMembers && near(at[g.members[0]], at[ep]) {
				groups[i].members = append(g.members, ep)
				continue next
			}
		}
		groups = append(groups, plannedGroup{members: []*endpoint{ep}, start: start})
	}
	for i := range groups {
		groups[i].findBehind(func(ep *endpoint) (record.Position, bool) { return at[ep].pos, at[ep].ok })
	}
	return groups
}

// findBehind sets g.behind to the members saved before the newest saved
// position of the group, and g.at to that position: they catch up to it
// before the group starts. saved returns a member's saved position.
func (g *plannedGroup) findBehind(saved func(*endpoint) (record.Position, bool)) {
	newest, ok := saved(g.members[0])
	for _, ep := range g.members[1:] {
		if pos, okEP := saved(ep); newest.Less(pos) {
			newest, ok = pos, okEP
		}
	}
	for _, ep := range g.members {
		if pos, _ := saved(ep); ok && pos.Less(newest) {
			g.behind = append(g.behind, ep)
		}
	}
	if len(g.behind) > 0 {
		g.at = &newest
	}
}

// groupPositions is a pipeline's position store: one position for all its
// members, saved to each member's store.
type groupPositions struct {
	mu      sync.Mutex
	members []*endpoint
	from    *record.Position // where a member that left its group starts
	last    record.Position  // last loaded or saved
	have    bool
}

// Load returns from when set, else the oldest of the members' saved
// positions, and false when any member has none (it starts at the oldest
// data, and so does the group).
func (g *groupPositions) Load() (record.Position, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.from != nil {
		if !g.have { // a later attempt resumes where the last one saved
			g.last, g.have = *g.from, true
		}
		return g.last, true, nil
	}
	var oldest record.Position
	for i, ep := range g.members {
		pos, ok, err := ep.positions.Load()
		if err != nil || !ok {
			return record.Position{}, false, err
		}
		if i == 0 || pos.Less(oldest) {
			oldest = pos
		}
	}
	g.last, g.have = oldest, true
	return oldest, true, nil
}

// saved reports whether the group has a position, loaded or saved.
func (g *groupPositions) saved() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.have
}

// Save saves pos for every member still in the group.
func (g *groupPositions) Save(pos record.Position) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, ep := range g.members {
		if err := ep.positions.Save(pos); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep.name, err))
		}
	}
	g.last, g.have = pos, true
	return errors.Join(errs...)
}

// leave takes ep out of the group, saves the group's last position as
// ep's and returns it; nil when the group has none yet (ep then starts as
// the group did).
func (g *groupPositions) leave(ep *endpoint) *record.Position {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.Index(g.members, ep)
	if i < 0 {
		return nil // left before: its file is its own
	}
	g.members = slices.Delete(slices.Clone(g.members), i, i+1)
	if !g.have {
		return nil
	}
	pos := g.last
	_ = ep.positions.Save(pos) // on error its file keeps an older position: resent, not lost
	return &pos
}
