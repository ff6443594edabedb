package reliability

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
)

// TestReadSegmentGoesOnAfterDamage: the accounting reads the records after
// damage in the middle of a segment (a writer that went on writing after
// a failed write leaves them there), in order, and none twice.
func TestReadSegmentGoesOnAfterDamage(t *testing.T) {
	dir := t.TempDir()
	w, err := wlog.NewSize(nil, nil, dir, 4<<20, compression.None)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		rec := make([]byte, 5000) // about six records a page, some across pages
		binary.BigEndian.PutUint32(rec, uint32(i))
		if err := w.Log(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(wlog.SegmentName(dir, 0))
	if err != nil {
		t.Fatal(err)
	}
	const damaged = 10 // the page garbled
	for i := damaged * walPage; i < (damaged+1)*walPage; i++ {
		data[i] = 0xa5
	}

	var got []uint32
	whole, err := readSegment(data, func(_ int64, rec []byte) error {
		got = append(got, binary.BigEndian.Uint32(rec))
		return nil
	})
	if err != nil || whole {
		t.Fatalf("readSegment: whole %v, err %v; want false, nil", whole, err)
	}
	// Every record before the damaged page, then from the first that
	// begins a page after it to the last.
	before := damaged * walPage / 5007
	for i := range before - 1 {
		if got[i] != uint32(i) {
			t.Fatalf("record %d read as %d", i, got[i])
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("record %d read after %d", got[i], got[i-1])
		}
	}
	if last := got[len(got)-1]; last != n-1 {
		t.Fatalf("last record read: %d, want %d", last, n-1)
	}
	if lost := n - len(got); lost < 6 || lost > 20 {
		t.Fatalf("%d records not read, want those of about two pages", lost)
	}
}
