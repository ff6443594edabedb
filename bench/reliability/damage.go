package reliability

import (
	"bytes"
	"context"
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
// before the sidecar read them (it is held back by an outage): two after
// the server closed them, one while the server was writing it, and what
// the sidecar logged of it.

// damage is one damaged place: in a WAL segment, or in a segment of the
// checkpoint named checkpoint.
type damage struct {
	checkpoint string
	segment    int
	offset     int64
	original   []byte // the bytes the damage replaced: the accounting puts them back
	what       string
}

// end is the offset after the damaged bytes.
func (d damage) end() int64 { return d.offset + int64(len(d.original)) }

const walPage = 32 << 10 // the WAL's page size

// damages are what corrupt does, in turn, each to a segment of its own:
// where in a segment of size bytes (offset and length), and with what
// (fill overwrites the original bytes in b; without fill the file is cut
// at the offset). The last damages the segment being written, as the
// outage ends.
var damages = []struct {
	what  string
	live  bool
	where func(size int64) (int64, int)
	fill  func(b []byte, rng *rand.Rand)
}{
	{"64 bytes overwritten in a closed segment", false,
		func(size int64) (int64, int) { return size / 2, 64 },
		func(b []byte, rng *rand.Rand) {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}},
	{"a 32 KiB page of a closed segment zeroed", false,
		func(size int64) (int64, int) { return size / 2 / walPage * walPage, walPage },
		func(b []byte, _ *rand.Rand) { clear(b) }},
	{"the second half of a closed segment cut off (the file truncated)", false,
		func(size int64) (int64, int) { off := size/2 + 1000; return off, int(size - off) },
		nil},
	{"the last written 32 KiB page of the segment being written zeroed", true,
		func(size int64) (int64, int) { return size/walPage*walPage - walPage, walPage },
		func(b []byte, _ *rand.Rand) { clear(b) }},
}

// corrupt damages, during an outage from now until end, one segment the
// sender has not read for each of damages: closed segments begun after a
// quarter of the outage, when the sidecar stopped reading long ago (it
// reads on only while its queue has room, a few seconds of the load), and,
// at the end of the outage, the newest segment, which the server is
// writing.
func (r *run) corrupt(ctx context.Context, end time.Time) error {
	if err := sleep(ctx, time.Until(end)/4); err != nil {
		return err
	}
	first, _ := newestSegment(r.walDir)
	first++ // the next segment begins after the quarter
	for i, d := range damages {
		seg := first + i
		if d.live {
			if err := sleep(ctx, time.Until(end)); err != nil {
				return err
			}
			var err error
			if seg, err = r.writtenPage(ctx, seg); err != nil {
				return err
			}
		} else if err := r.waitSegment(ctx, seg+1, end); err != nil { // seg is closed
			return err
		}
		if err := r.damage("", seg, d.what, d.where, d.fill); err != nil {
			return err
		}
	}
	return nil
}

// writtenPage returns the newest segment, at least from, once a whole
// page of it is written.
func (r *run) writtenPage(ctx context.Context, from int) (int, error) {
	for {
		if seg, err := newestSegment(r.walDir); err == nil && seg >= from {
			if info, err := os.Stat(filepath.Join(r.walDir, fmt.Sprintf("%08d", seg))); err == nil && info.Size() >= walPage {
				return seg, nil
			}
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// damageCheckpoint zeroes a page in the middle of the first segment of
// the sender's newest checkpoint (its middle 64 bytes if it is smaller).
func (r *run) damageCheckpoint() error {
	_, cp := segmentRange(r.walDir)
	if cp < 0 {
		return fmt.Errorf("%s has no checkpoint", r.s.Name)
	}
	name := fmt.Sprintf("checkpoint.%08d", cp)
	return r.damage(name, 0, "a 32 KiB page of the newest checkpoint zeroed", func(size int64) (int64, int) {
		if size < 2*walPage {
			return size / 2, 64
		}
		return size / 2 / walPage * walPage, walPage
	}, func(b []byte, _ *rand.Rand) { clear(b) })
}

// damage overwrites the bytes of segment seg (of checkpoint, when it is
// not "") that where names with fill, or without fill cuts the file where
// they begin, keeping the original ones.
func (r *run) damage(checkpoint string, seg int, what string, where func(int64) (int64, int), fill func([]byte, *rand.Rand)) error {
	f, err := os.OpenFile(filepath.Join(r.walDir, checkpoint, fmt.Sprintf("%08d", seg)), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	off, n := where(info.Size())
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("damage segment %d: %w", seg, err)
	}
	d := damage{checkpoint: checkpoint, segment: seg, offset: off, original: bytes.Clone(b), what: what}
	if fill == nil {
		err = f.Truncate(off)
	} else {
		fill(b, r.rng)
		_, err = f.WriteAt(b, off)
	}
	if err != nil {
		return fmt.Errorf("damage segment %d: %w", seg, err)
	}
	r.damaged = append(r.damaged, d)
	return nil
}

// damageLine is walship's log line for a damaged segment.
var damageLine = regexp.MustCompile(`msg="WAL segment is damaged: reading on at the next intact record".* segment=(\d+) offset=(\d+)`)

// tornLine is walship's log line for a closed segment that ends inside a
// record (cut short).
var tornLine = regexp.MustCompile(`msg="Finished WAL segment ends in a torn record; skipping it".* segment=(\d+) offset=(\d+)`)

// checkpointDamageLine is walship's log line for a damaged checkpoint of
// its agent's storage, read when it opens.
var checkpointDamageLine = regexp.MustCompile(`msg="Damaged checkpoint found on replay: [^"]*".* checkpoint=(checkpoint\.\d+)`)

// damageLogged returns, for each damaged place, how walship's logs name
// it ("segment N at offset O"), or "" where they do not.
func (r *run) damageLogged() ([]string, error) {
	logged, checkpoints := map[int]string{}, map[string]string{}
	for i := range r.runs {
		data, err := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("run-%02d.log", i)))
		if err != nil {
			return nil, err
		}
		for _, m := range damageLine.FindAllStringSubmatch(string(data), -1) {
			seg, _ := strconv.Atoi(m[1])
			logged[seg] = fmt.Sprintf("segment %s at offset %s", m[1], m[2])
		}
		for _, m := range tornLine.FindAllStringSubmatch(string(data), -1) {
			seg, _ := strconv.Atoi(m[1])
			logged[seg] = fmt.Sprintf("segment %s torn at offset %s", m[1], m[2])
		}
		for _, m := range checkpointDamageLine.FindAllStringSubmatch(string(data), -1) {
			checkpoints[m[1]] = m[0]
		}
	}
	out := make([]string, len(r.damaged))
	for i, d := range r.damaged {
		if d.checkpoint != "" {
			if line := checkpoints[d.checkpoint]; line != "" {
				out[i] = d.checkpoint + " on replay"
			}
			continue
		}
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
		if d.checkpoint != "" {
			line = fmt.Sprintf("%s, segment %d at offset %d, %s", d.checkpoint, d.segment, d.offset, d.what)
		}
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
