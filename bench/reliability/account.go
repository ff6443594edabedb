package reliability

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

// This file is the accounting: what the WAL holds against what the
// recorder accepted.

// Accounting is the outcome of a run, sample by sample: every sample the
// WAL holds (older than the run's cut) is delivered or lost.
type Accounting struct {
	Written    int `json:"written"`    // samples the WAL holds
	Delivered  int `json:"delivered"`  // of them, accepted at least once
	Duplicated int `json:"duplicated"` // of them, accepted more than once
	Extra      int `json:"extra"`      // deliveries beyond the first, summed
	Lost       int `json:"lost"`       // written, never accepted
	// Unknown are samples accepted that the WAL does not hold: a sender
	// inventing data, or a WAL the accounting could not read whole.
	Unknown int `json:"unknown"`
	// Orphaned are samples the WAL holds for a series ref whose record no
	// reader can read (it was in damage) or that was never written (its
	// commit failed, and the writer did not log it again): whose they are
	// is unknown, so they are neither delivered nor lost, and no reader
	// can ship them (0 in a sound WAL).
	Orphaned int `json:"orphaned,omitempty"`
	// TornSegments are segments that could not be read whole (a record
	// torn by a kill, a failed write, damage); what follows a tear in
	// them counts only from the first record that begins a later page.
	TornSegments int `json:"torn_segments"`
	// LostDamaged are the lost samples of segments the scenario damaged
	// (corrupt), which the accounting reads as they were before;
	// LostAfterDamage those of them in records that begin a page or more
	// after the damage, which a reader can find again (0 for walship).
	LostDamaged     int `json:"lost_in_damaged_segments,omitempty"`
	LostAfterDamage int `json:"lost_after_damage,omitempty"`
	// CatchUp is how long after the endpoint came back the last sample
	// written before it arrived (outages only).
	CatchUp time.Duration `json:"catch_up_ns,omitempty"`
}

// account reads the WAL in dir (its segments and the series of its last
// checkpoint) and compares every sample older than cut with what rec
// accepted; with back set, it measures the catch-up after back. Damaged
// segments are read with their original bytes put back: what the writer
// wrote.
func account(dir string, rec *Recorder, cut, back time.Time, damaged []damage) (Accounting, error) {
	var a Accounting
	written := map[sampleKey]bool{}
	series := map[chunks.HeadSeriesRef]int64{} // ref -> the recorder's id, or a negative one of the series' own if it has none
	unstored := map[string]int64{}             // series the recorder never got (labels) -> their negative id
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seriesID := func(s record.RefSeries) {
		l := s.Labels.String()
		if id, ok := rec.ids[l]; ok {
			series[s.Ref] = int64(id)
			return
		}
		id, ok := unstored[l]
		if !ok {
			id = -1 - int64(len(unstored))
			unstored[l] = id
		}
		series[s.Ref] = id
	}
	var dec record.Decoder
	if cp, _, err := wlog.LastCheckpoint(dir); err == nil {
		if _, err := readSegments(cp, &dec, seriesID, nil, nil); err != nil {
			return a, fmt.Errorf("checkpoint %s: %w", cp, err)
		}
	} else if !errors.Is(err, record.ErrNotFound) {
		return a, err
	}
	restore := map[int][]damage{}
	for _, d := range damaged {
		if d.checkpoint == "" { // a checkpoint is read only for its series, from the shadow's segments
			restore[d.segment] = append(restore[d.segment], d)
		}
	}
	cutMs, backMs := cut.UnixMilli(), back.UnixMilli()
	torn, err := readSegments(dir, &dec, seriesID, func(seg int, start int64, s record.RefSample) {
		if s.T >= cutMs {
			return
		}
		id, ok := series[s.Ref]
		if !ok {
			a.Orphaned++
			return
		}
		k := sampleKey{uint32(id), s.T}
		if id < 0 {
			k.series = ^uint32(-1 - id) // a series the recorder never got: keys of its own, above the recorder's
		}
		if written[k] {
			return // written twice (the agent's WAL replayed); one sample
		}
		written[k] = true
		a.Written++
		got, ok := rec.seen[k]
		if id < 0 || !ok {
			a.Lost++
			if ds, damaged := restore[seg]; damaged {
				a.LostDamaged++
				if pageAfter(ds, start) {
					a.LostAfterDamage++
				}
			}
			return
		}
		a.Delivered++
		if got.times > 1 {
			a.Duplicated++
			a.Extra += int(got.times) - 1
		}
		if !back.IsZero() && s.T < backMs {
			if at := rec.begin.Add(time.Duration(got.first) * time.Millisecond).Sub(back); at > a.CatchUp {
				a.CatchUp = at
			}
		}
	}, restore)
	if err != nil {
		return a, err
	}
	a.TornSegments = torn
	for k := range rec.seen {
		if k.t < cutMs && !written[k] {
			a.Unknown++
		}
	}
	return a, nil
}

// pageAfter reports whether a record beginning at start (or after) begins
// in a page after one of the damages ds.
func pageAfter(ds []damage, start int64) bool {
	for _, d := range ds {
		if start >= (d.end()-1)/walPage*walPage+walPage {
			return true
		}
	}
	return false
}

// readSegments reads every segment of dir on its own, so that a segment
// torn by a kill only loses its own rest, handing series and samples
// (with their segment and the offset their record begins at, or a little
// before: where the record before it ended) to the callbacks; it returns
// how many segments could not be read whole. After a tear or damage in
// the middle of a segment, reading goes on at the first record that
// begins a later page: a writer that went on writing after a failed
// write (upstream's, after ENOSPC) left records there, and they count as
// written. A segment in restore is read with the original bytes of its
// damages put back.
func readSegments(dir string, dec *record.Decoder, onSeries func(record.RefSeries), onSample func(int, int64, record.RefSample), restore map[int][]damage) (int, error) {
	first, last, err := wlog.Segments(dir)
	if err != nil {
		return 0, err
	}
	torn := 0
	var series []record.RefSeries
	var samples []record.RefSample
	each := func(seg int, start int64, rec []byte) error {
		var err error
		switch dec.Type(rec) {
		case record.Series:
			if series, err = dec.Series(rec, series[:0]); err != nil {
				return fmt.Errorf("segment %d: %w", seg, err)
			}
			for _, s := range series {
				onSeries(s)
			}
		case record.Samples, record.SamplesV2:
			if onSample == nil {
				return nil
			}
			if samples, err = dec.Samples(rec, samples[:0]); err != nil {
				return fmt.Errorf("segment %d: %w", seg, err)
			}
			for _, s := range samples {
				onSample(seg, start, s)
			}
		}
		return nil
	}
	for i := first; i >= 0 && i <= last; i++ {
		data, err := os.ReadFile(wlog.SegmentName(dir, i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return torn, err
		}
		for _, d := range restore[i] {
			if end := int(d.end()); end > len(data) { // the file was cut
				data = append(data, make([]byte, end-len(data))...)
			}
			copy(data[d.offset:], d.original)
		}
		whole, err := readSegment(data, func(start int64, rec []byte) error { return each(i, start, rec) })
		if err != nil {
			return torn, err
		}
		if !whole {
			torn++
		}
	}
	return torn, nil
}

// readSegment hands each record of a segment's data, with the offset it
// begins at, to f, passing over what cannot be read (see readSegments); it
// reports whether the segment was read whole.
func readSegment(data []byte, f func(start int64, rec []byte) error) (whole bool, err error) {
	whole = true
	for off := int64(0); off < int64(len(data)); {
		// A page after damage that begins with the middle or last fragment
		// of a record: that fragment becomes a record of its own (a full
		// fragment, uncompressed; its checksum covers its payload only),
		// which is passed over, so that the reader takes the records that
		// begin after it.
		passOver := false
		if typ := data[off] & 0x07; off > 0 && (typ == 3 || typ == 4) {
			data[off], passOver = 1, true
		}
		r := wlog.NewReader(bytes.NewReader(data[off:]))
		end, n := off, 0
		for r.Next() {
			start := end
			end = off + r.Offset()
			if passOver {
				passOver = false
				continue
			}
			n++
			if err := f(start, r.Record()); err != nil {
				return whole, err
			}
		}
		if err := r.Err(); err == nil || errors.Is(err, io.EOF) {
			return whole, nil
		}
		whole = false
		if n == 0 {
			off += walPage // no record begins this page: try the next
		} else {
			off = (end/walPage + 1) * walPage
		}
	}
	return whole, nil
}
