package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file is the corrupt scenario's fault: WAL segments damaged on disk
// after the server closed them and before the sidecar read them (it is
// held back by an outage), and what the sidecar logged of it.

// damage is one damaged place.
type damage struct {
	segment int
	offset  int64
	what    string
}

// damages are what corrupt does, in turn, each to a segment of its own:
// bytes in the middle of a record overwritten, a whole page zeroed.
var damages = []struct {
	what string
	do   func(f *os.File, size int64, rng *rand.Rand) (int64, error)
}{
	{"64 bytes overwritten", func(f *os.File, size int64, rng *rand.Rand) (int64, error) {
		garbage := make([]byte, 64)
		for i := range garbage {
			garbage[i] = byte(rng.Uint32())
		}
		off := size / 2
		_, err := f.WriteAt(garbage, off)
		return off, err
	}},
	{"a 32 KiB page zeroed", func(f *os.File, size int64, _ *rand.Rand) (int64, error) {
		const page = 32 << 10
		off := size / 2 / page * page
		_, err := f.WriteAt(make([]byte, page), off)
		return off, err
	}},
}

// corrupt damages, during an outage from now until end, one closed
// segment the sender has not read for each of damages: segments begun
// after a quarter of the outage, when the sidecar stopped reading long
// ago (it reads on only while its queue has room, a few seconds of the
// load).
func (r *run) corrupt(ctx context.Context, end time.Time) error {
	if err := sleep(ctx, time.Until(end)/4); err != nil {
		return err
	}
	first, _ := newestSegment(r.walDir)
	first++ // the next segment begins after the quarter
	for i, d := range damages {
		seg := first + i
		if err := r.waitSegment(ctx, seg+1, end); err != nil { // seg is closed
			return err
		}
		path := filepath.Join(r.walDir, fmt.Sprintf("%08d", seg))
		if err := keepPristine(path, r.pristinePath(seg)); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		off, err := d.do(f, info.Size(), r.rng)
		if err := errors.Join(err, f.Close()); err != nil {
			return fmt.Errorf("damage segment %d: %w", seg, err)
		}
		r.damaged = append(r.damaged, damage{segment: seg, offset: off, what: d.what})
	}
	return nil
}

// keepPristine copies the segment at path to dst before it is damaged:
// the accounting reads what the writer wrote, not what the damage left.
func keepPristine(path, dst string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

func (r *run) pristinePath(seg int) string {
	return filepath.Join(r.dir, "pristine", fmt.Sprintf("%08d", seg))
}

// pristine maps each damaged segment to its copy from before the damage.
func (r *run) pristine() map[int]string {
	m := map[int]string{}
	for _, d := range r.damaged {
		m[d.segment] = r.pristinePath(d.segment)
	}
	return m
}

// damageLine is walship's log line for a damaged segment.
var damageLine = regexp.MustCompile(`msg="WAL segment is damaged: reading on at the next intact record".* segment=(\d+) offset=(\d+)`)

// damageLogged returns, for each damaged place, how walship's logs name
// it ("segment N at offset O"), or "" where they do not.
func (r *run) damageLogged() ([]string, error) {
	logged := map[int]string{}
	for i := range r.runs {
		data, err := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("run-%02d.log", i)))
		if err != nil {
			return nil, err
		}
		for _, m := range damageLine.FindAllStringSubmatch(string(data), -1) {
			seg, _ := strconv.Atoi(m[1])
			logged[seg] = fmt.Sprintf("segment %s at offset %s", m[1], m[2])
		}
	}
	out := make([]string, len(r.damaged))
	for i, d := range r.damaged {
		out[i] = logged[d.segment]
	}
	return out, nil
}

// damageKinds lists what corrupt does.
func damageKinds() string {
	var kinds []string
	for _, d := range damages {
		kinds = append(kinds, d.what)
	}
	return strings.Join(kinds, ", ")
}

// reportDamage puts into res the places corrupt damaged and, for walship,
// whether its log named each.
func (r *run) reportDamage(res *Result) error {
	if len(r.damaged) == 0 {
		return nil
	}
	logged := make([]string, len(r.damaged))
	if r.s.Walship {
		var err error
		if logged, err = r.damageLogged(); err != nil {
			return err
		}
	}
	for i, d := range r.damaged {
		line := fmt.Sprintf("segment %d at offset %d, %s", d.segment, d.offset, d.what)
		switch {
		case !r.s.Walship:
		case logged[i] == "":
			line += ": not logged"
			res.DamageUnlogged++
		default:
			line += ": logged as " + logged[i]
		}
		res.Damaged = append(res.Damaged, line)
	}
	return nil
}
