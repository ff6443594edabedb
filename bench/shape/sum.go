package shape

import (
	"math"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// Sum is an order-independent digest of a set of samples: their count and
// the sum of a hash of each (series labels, timestamp, value). Two senders
// that deliver the same samples, in any order and any batching, give the
// same Sum; a lost, duplicated or altered sample changes it.
type Sum struct {
	Samples int64  `json:"samples"`
	Hash    uint64 `json:"hash"`
}

// Add counts one sample of the series whose SeriesHash is series.
func (s *Sum) Add(series uint64, t int64, v float64) {
	s.Samples++
	s.Hash += mix(series ^ mix(uint64(t)) ^ mix(math.Float64bits(v)+0x9E3779B97F4A7C15))
}

// Merge adds o into s.
func (s *Sum) Merge(o Sum) {
	s.Samples += o.Samples
	s.Hash += o.Hash
}

// mix is a 64-bit finaliser (splitmix64's).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// SeriesHasher hashes a series' labels, given one name and value at a time
// in the order they are sent (sorted by name, as both protocols send them).
// The zero value is ready; Reset starts the next series.
type SeriesHasher struct{ d xxhash.Digest }

var sep = []byte{0xff}

// Reset starts a new series.
func (h *SeriesHasher) Reset() { h.d.Reset() }

// Label adds one label.
func (h *SeriesHasher) Label(name, value []byte) {
	h.d.Write(name)
	h.d.Write(sep)
	h.d.Write(value)
	h.d.Write(sep)
}

// Sum64 is the series' hash.
func (h *SeriesHasher) Sum64() uint64 { return h.d.Sum64() }

// SeriesHash is the hash SeriesHasher gives for ls.
func SeriesHash(ls labels.Labels) uint64 {
	var h SeriesHasher
	h.Reset()
	ls.Range(func(l labels.Label) {
		h.d.WriteString(l.Name)
		h.d.Write(sep)
		h.d.WriteString(l.Value)
		h.d.Write(sep)
	})
	return h.Sum64()
}
