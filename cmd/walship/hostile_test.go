package main_test

import (
	be "encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/wal"
)

// hostileSegments are segments no writer wrote, 8 MiB each: every page
// damaged, a page of zeros after another, and one record that never ends
// (a first fragment and 8 MiB of middle ones, each with a good checksum:
// as the newest segment, a record still being written, and no damage).
var hostileSegments = []struct {
	name    string
	data    func() []byte
	damaged bool
}{
	{"random", func() []byte {
		b := make([]byte, 8<<20)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}, true},
	{"zeros", func() []byte { return make([]byte, 8<<20) }, true},
	{"endless-record", func() []byte {
		var b []byte
		payload := make([]byte, wal.MaxFragmentPayload)
		for i := range payload {
			payload[i] = byte(i)
		}
		crc := crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli))
		for page := 0; page < 256; page++ {
			typ := byte(3) // middle
			if page == 0 {
				typ = 2 // first
			}
			b = append(b, typ, 0, 0, 0, 0, 0, 0)
			be.BigEndian.PutUint16(b[len(b)-6:], uint16(len(payload)))
			be.BigEndian.PutUint32(b[len(b)-4:], crc)
			b = append(b, payload...)
		}
		return b
	}, false},
}

// TestHostileWALSegment puts each hostile segment after the segments of a
// log Prometheus wrote. inspect reports the damage and exits 1; replay
// ships every sample of the good segments, says what it could not read
// and exits 1; neither panics nor takes long. The endless record is an
// incomplete tail to inspect, and a torn one to replay: both exit 0.
func TestHostileWALSegment(t *testing.T) {
	for _, h := range hostileSegments {
		want := 0
		if h.damaged {
			want = 1
		}
		t.Run(h.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(dir, os.DirFS(fixture("none"))))
			_, last, err := wal.Segments(wal.OS, dir)
			require.NoError(t, err)
			stdout, stderr, code := walship(t, "inspect", "--wal.dir", dir, "--json")
			require.Equal(t, 0, code, stderr)
			var clean struct{ Samples int }
			require.NoError(t, json.Unmarshal([]byte(stdout), &clean))
			require.NoError(t, os.WriteFile(wal.SegmentPath(dir, last+1), h.data(), 0o644))

			stdout, stderr, got := walship(t, "inspect", "--wal.dir", dir, "--json")
			require.Equal(t, want, got, stderr)
			var rep struct {
				Samples     int
				Corruptions []struct{ Segment int }
				Segments    []struct {
					IncompleteTail int64 `json:"incomplete_tail"`
				}
			}
			require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
			require.Equal(t, clean.Samples, rep.Samples)
			require.Equal(t, h.damaged, len(rep.Corruptions) > 0)
			for _, c := range rep.Corruptions {
				require.Equal(t, last+1, c.Segment)
			}
			if !h.damaged {
				require.Equal(t, int64(8<<20), rep.Segments[len(rep.Segments)-1].IncompleteTail, "the whole record")
			}

			recv := testkit.NewReceiver(t)
			work := t.TempDir()
			cfg := writeFile(t, filepath.Join(work, "walship.yml"), "remote_write:\n"+remoteWrite("hostile", recv.URL))
			p := start(t, work, false, "replay", "--config.file", cfg, "--wal.dir", dir)
			require.Equal(t, want, p.wait(60*time.Second), p.stderr.String())
			require.Equal(t, clean.Samples, recv.Accepted().Samples)
			require.NotContains(t, p.stderr.String(), "panic")
		})
	}
}
