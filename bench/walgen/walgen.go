// Package walgen writes a benchmark WAL with upstream Prometheus's own WAL
// writer (tsdb/wlog) and record encoder (tsdb/record), as a Prometheus
// server scraping the shape's targets would: for every scrape of every
// target one commit, holding the target's series record on its first
// scrape, then its samples record. Records are snappy-compressed, as
// Prometheus 3 writes them by default.
//
// Next to the segments it writes manifest.json (last, so that a WAL
// without one is incomplete): the shape, the counts and the Sum of every
// sample, which a receiver compares with what arrived.
package walgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/walship/walship/bench/shape"
)

// version changes whenever the generator would write other bytes, so that
// cached WALs of an older generator are written again.
const version = 1

// Manifest describes a generated WAL.
type Manifest struct {
	Version     int         `json:"version"`
	Shape       shape.Shape `json:"shape"`
	Targets     int         `json:"targets"`
	Sum         shape.Sum   `json:"sum"`
	Bytes       int64       `json:"bytes"`
	Segments    int         `json:"segments"`
	LabelBytes  int64       `json:"label_bytes"` // names and values of all series
	Compression string      `json:"compression"`
	Took        string      `json:"took"`
}

const manifestName = "manifest.json"

// ReadManifest reads the manifest of a generated WAL directory.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, manifestName), err)
	}
	return m, nil
}

// Ensure returns the manifest of the shape's WAL in dir, writing the WAL
// first when dir holds none, or one of another shape or generator.
func Ensure(dir string, s shape.Shape) (Manifest, error) {
	if m, err := ReadManifest(dir); err == nil && m.Version == version && m.Shape == s {
		return m, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return Manifest{}, err
	}
	return Write(dir, s)
}

// Write writes the shape's WAL into dir, which must not exist.
func Write(dir string, s shape.Shape) (Manifest, error) { return WriteFrom(dir, s, shape.BaseTime) }

// WriteFrom is Write with the first scrape at base (shape.TimestampFrom)
// instead of shape.BaseTime: receivers that refuse samples far in the
// future or the past get a WAL of now.
func WriteFrom(dir string, s shape.Shape, base int64) (Manifest, error) {
	begin := time.Now()
	w, err := wlog.New(nil, nil, dir, compression.Snappy)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{Version: version, Shape: s, Targets: s.Targets(), Compression: "snappy"}
	var (
		enc     record.Encoder
		sb      labels.ScratchBuilder
		hashes  = make([]uint64, s.Series)
		series  []record.RefSeries
		samples []record.RefSample
		buf     []byte
		sbuf    []byte
	)
	for scrape := 0; scrape < s.Scrapes; scrape++ {
		for target := 0; target < m.Targets; target++ {
			first := target * shape.SeriesPerTarget
			last := min(first+shape.SeriesPerTarget, s.Series)
			var recs [][]byte
			if scrape == 0 {
				series = series[:0]
				for i := first; i < last; i++ {
					ls := shape.Labels(&sb, i)
					hashes[i] = shape.SeriesHash(ls)
					ls.Range(func(l labels.Label) { m.LabelBytes += int64(len(l.Name) + len(l.Value)) })
					series = append(series, record.RefSeries{Ref: chunks.HeadSeriesRef(i + 1), Labels: ls})
				}
				sbuf = enc.Series(series, sbuf[:0])
				recs = append(recs, sbuf)
			}
			t := shape.TimestampFrom(base, target, scrape)
			samples = samples[:0]
			for i := first; i < last; i++ {
				v := shape.Value(i, scrape)
				samples = append(samples, record.RefSample{Ref: chunks.HeadSeriesRef(i + 1), T: t, V: v})
				m.Sum.Add(hashes[i], t, v)
			}
			buf = enc.Samples(samples, buf[:0])
			recs = append(recs, buf)
			if err := w.Log(recs...); err != nil {
				w.Close()
				return Manifest{}, fmt.Errorf("write %s: %w", dir, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		return Manifest{}, err
	}
	first, last, err := wlog.Segments(dir)
	if err != nil {
		return Manifest{}, err
	}
	m.Segments = last - first + 1
	m.Bytes, err = dirSize(dir)
	if err != nil {
		return Manifest{}, err
	}
	m.Took = time.Since(begin).Round(time.Millisecond).String()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	return m, os.WriteFile(filepath.Join(dir, manifestName), b, 0o644)
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}
