// Package inspect reads a whole log directory (its newest checkpoint and
// every segment) and counts what it holds: records by type, series,
// samples, histograms, exemplars, metadata, the time range, and every
// corruption with its segment and offset. It never stops at damage:
// counting goes on at the next intact record, as the watcher's reading
// does (wal.Reader.Resync).
package inspect

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// Counts are the contents of one segment, a checkpoint, or a whole directory.
type Counts struct {
	Records    map[string]int `json:"records"`
	Series     int            `json:"series"`
	Samples    int            `json:"samples"`
	Histograms int            `json:"histograms"`
	Exemplars  int            `json:"exemplars"`
	Metadata   int            `json:"metadata"`
	Tombstones int            `json:"tombstones"`
	MinTime    int64          `json:"min_time"`
	MaxTime    int64          `json:"max_time"`
}

func newCounts() Counts {
	return Counts{Records: map[string]int{}, MinTime: math.MaxInt64, MaxTime: math.MinInt64}
}

func (c *Counts) time(t int64) {
	c.MinTime = min(c.MinTime, t)
	c.MaxTime = max(c.MaxTime, t)
}

// noTimes sets the time range to 0, 0 when there were no samples.
func (c *Counts) noTimes() {
	if c.MinTime == math.MaxInt64 {
		c.MinTime, c.MaxTime = 0, 0
	}
}

func (c *Counts) add(o Counts) {
	for k, v := range o.Records {
		c.Records[k] += v
	}
	c.Series += o.Series
	c.Samples += o.Samples
	c.Histograms += o.Histograms
	c.Exemplars += o.Exemplars
	c.Metadata += o.Metadata
	c.Tombstones += o.Tombstones
	c.MinTime = min(c.MinTime, o.MinTime)
	c.MaxTime = max(c.MaxTime, o.MaxTime)
}

// Segment is what one segment (of the log or of its checkpoint) holds.
type Segment struct {
	// Checkpoint names the checkpoint directory the segment belongs to;
	// empty for a segment of the log itself.
	Checkpoint string `json:"checkpoint,omitempty"`
	Index      int    `json:"index"`
	Size       int64  `json:"size"`
	Counts
	// IncompleteTail counts the bytes at the end of the newest segment that
	// do not yet form a whole record: a writer may still be writing them.
	IncompleteTail int64 `json:"incomplete_tail,omitempty"`
}

// Corruption is one place where the log could not be read.
type Corruption struct {
	Checkpoint string `json:"checkpoint,omitempty"`
	Segment    int    `json:"segment"`
	Offset     int64  `json:"offset"`
	Error      string `json:"error"`
}

// Report is the result of Dir.
type Report struct {
	Dir         string       `json:"dir"`
	Segments    []Segment    `json:"segments"`
	Corruptions []Corruption `json:"corruptions"`
	Counts
}

// Dir inspects the log in dir. It returns an error only when dir cannot be
// read as a log at all; damage is reported in Report.Corruptions.
func Dir(fsys wal.FS, dir string) (*Report, error) {
	info, err := fsys.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("inspect: %s is not a directory", dir)
	}
	segs, err := wal.ListSegments(fsys, dir)
	if err != nil {
		return nil, err
	}
	cp, err := wal.LastCheckpoint(fsys, dir)
	if err != nil && !errors.Is(err, wal.ErrNoCheckpoint) {
		return nil, err
	}
	if len(segs) == 0 && err != nil {
		return nil, fmt.Errorf("inspect: %s holds no WAL segments or checkpoints", dir)
	}
	rep := &Report{Dir: dir, Segments: []Segment{}, Corruptions: []Corruption{}, Counts: newCounts()}
	in := &inspector{fsys: fsys, rep: rep}
	if err == nil {
		cpDir := filepath.Join(dir, cp.Name)
		cpSegs, err := wal.ListSegments(fsys, cpDir)
		if err != nil {
			return nil, err
		}
		in.readClosed(cpDir, cp.Name, cpSegs)
	}
	if len(segs) > 0 {
		in.readClosed(dir, "", segs[:len(segs)-1])
		in.readLive(dir, segs[len(segs)-1])
	}
	for i := range rep.Segments {
		rep.add(rep.Segments[i].Counts)
		rep.Segments[i].noTimes()
	}
	rep.noTimes()
	return rep, nil
}

type inspector struct {
	fsys wal.FS
	rep  *Report
	dec  record.Decoder

	series     []record.RefSeries
	samples    []record.RefSample
	histograms []record.RefHistogramSample
	floatHists []record.RefFloatHistogramSample
	exemplars  []record.RefExemplar
	metadata   []record.RefMetadata
	stones     []record.Stone
}

func (in *inspector) segment(dir, checkpoint string, ref wal.SegmentRef) *Segment {
	s := Segment{Checkpoint: checkpoint, Index: ref.Index, Counts: newCounts()}
	if info, err := in.fsys.Stat(filepath.Join(dir, ref.Name)); err == nil {
		s.Size = info.Size()
	}
	in.rep.Segments = append(in.rep.Segments, s)
	return &in.rep.Segments[len(in.rep.Segments)-1]
}

func (in *inspector) corrupt(checkpoint string, segment int, offset int64, err error) {
	var ce *wal.CorruptionError
	if errors.As(err, &ce) {
		err = ce.Err // segment and offset are fields of their own
	}
	in.rep.Corruptions = append(in.rep.Corruptions, Corruption{Checkpoint: checkpoint, Segment: segment, Offset: offset, Error: err.Error()})
}

// readClosed reads closed segments, passing over damage.
func (in *inspector) readClosed(dir, checkpoint string, segs []wal.SegmentRef) {
	for _, ref := range segs {
		seg := in.segment(dir, checkpoint, ref)
		r := wal.NewReader(in.fsys, dir, []wal.SegmentRef{ref}, 0)
		for {
			for r.Next() {
				in.record(checkpoint, seg, r.RecordStart(), r.Record())
			}
			err := r.Err()
			if err == nil {
				break
			}
			in.corrupt(checkpoint, ref.Index, offsetOf(err, r.Position().Offset), err)
			if !r.Resync() {
				break
			}
		}
		r.Close()
	}
}

// readLive reads the newest segment, which a writer may still be writing:
// a record cut short at its end is not damage.
func (in *inspector) readLive(dir string, ref wal.SegmentRef) {
	seg := in.segment(dir, "", ref)
	f, err := in.fsys.Open(filepath.Join(dir, ref.Name))
	if err != nil {
		in.corrupt("", ref.Index, 0, err)
		return
	}
	defer f.Close()
	r := wal.NewLiveReader(f, ref.Index, 0)
	damaged := false
	for {
		for r.Next() {
			in.record("", seg, r.RecordStart(), r.Record())
		}
		err := r.Err()
		if err == io.EOF {
			break
		}
		in.corrupt("", ref.Index, offsetOf(err, r.Position().Offset), err)
		if damaged = true; !r.Resync() {
			return
		}
	}
	if damaged {
		return // the corruption says where; what follows it is no torn tail of a record read whole
	}
	// Page padding read after the last record moved Position past it too:
	// what is left is a record not written whole yet.
	seg.IncompleteTail = seg.Size - r.Position().Offset
}

func offsetOf(err error, fallback int64) int64 {
	var ce *wal.CorruptionError
	if errors.As(err, &ce) {
		return ce.Offset
	}
	return fallback
}

// record counts one record. A record that does not decode is reported as
// a corruption at its start and not counted.
func (in *inspector) record(checkpoint string, seg *Segment, at record.Position, rec []byte) {
	typ := in.dec.TypeOf(rec)
	seg.Records[typ.String()]++
	var err error
	switch typ {
	case record.Series:
		in.series, err = in.dec.Series(rec, in.series[:0])
		seg.Series += len(in.series)
	case record.Samples, record.SamplesV2:
		in.samples, err = in.dec.Samples(rec, in.samples[:0])
		seg.Samples += len(in.samples)
		for _, s := range in.samples {
			seg.time(s.T)
		}
	case record.HistogramSamples, record.CustomBucketsHistogramSamples, record.HistogramSamplesV2:
		in.histograms, err = in.dec.HistogramSamples(rec, in.histograms[:0])
		seg.Histograms += len(in.histograms)
		for _, h := range in.histograms {
			seg.time(h.T)
		}
	case record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples, record.FloatHistogramSamplesV2:
		in.floatHists, err = in.dec.FloatHistogramSamples(rec, in.floatHists[:0])
		seg.Histograms += len(in.floatHists)
		for _, h := range in.floatHists {
			seg.time(h.T)
		}
	case record.Exemplars:
		in.exemplars, err = in.dec.Exemplars(rec, in.exemplars[:0])
		seg.Exemplars += len(in.exemplars)
	case record.Metadata:
		in.metadata, err = in.dec.Metadata(rec, in.metadata[:0])
		seg.Metadata += len(in.metadata)
	case record.Tombstones:
		in.stones, err = in.dec.Tombstones(rec, in.stones[:0])
		seg.Tombstones += len(in.stones)
	}
	if err != nil {
		seg.Records[typ.String()]--
		in.corrupt(checkpoint, at.Segment, at.Offset, fmt.Errorf("decode %s record: %w", typ, err))
	}
}
