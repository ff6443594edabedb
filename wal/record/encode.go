package record

import (
	"encoding/binary"
	"math"

	"github.com/prometheus/prometheus/model/labels"
)

// Encoder appends WAL records to byte slices. Every method appends exactly
// the bytes Prometheus v0.316.0's tsdb/record.Encoder writes for the same
// input and allocates nothing when dst has room for the record.
//
// The zero value writes the classic record types (Samples, HistogramSamples,
// ...); set STStorage to write the V2 types that carry start timestamps.
type Encoder struct {
	// STStorage selects the V2 encodings (SamplesV2, HistogramSamplesV2,
	// FloatHistogramSamplesV2), which store each sample's start timestamp.
	// It matches upstream's Encoder.EnableSTStorage, which Prometheus sets
	// with the st-storage feature flag.
	STStorage bool
}

// Start timestamp markers of the V2 record types: what a later entry's ST is,
// relative to the previous and the first entry of the record.
const (
	stNone     byte = 0 // ST is 0 (unknown).
	stSame     byte = 1 // ST equals the previous entry's ST.
	stExplicit byte = 2 // A varint follows: ST minus the first entry's ST.
)

func appendBE64(dst []byte, x uint64) []byte { return binary.BigEndian.AppendUint64(dst, x) }

func appendFloat(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendLabels writes a label count and then each name and value as
// uvarint-length-prefixed strings, in the order the set holds them.
func appendLabels(dst []byte, ls labels.Labels) []byte {
	dst = binary.AppendUvarint(dst, uint64(ls.Len()))
	ls.Range(func(l labels.Label) {
		dst = appendString(dst, l.Name)
		dst = appendString(dst, l.Value)
	})
	return dst
}

// appendST writes the start timestamp marker of a V2 entry that is not the
// first of its record. The checks go in this order: zero wins over "same as
// previous".
func appendST(dst []byte, st, firstST, prevST int64) []byte {
	switch st {
	case 0:
		return append(dst, stNone)
	case prevST:
		return append(dst, stSame)
	default:
		dst = append(dst, stExplicit)
		return binary.AppendVarint(dst, st-firstST)
	}
}

// Series appends a Series record holding series to dst.
func (Encoder) Series(dst []byte, series []RefSeries) []byte {
	dst = append(dst, byte(Series))
	for i := range series {
		dst = appendBE64(dst, uint64(series[i].Ref))
		dst = appendLabels(dst, series[i].Labels)
	}
	return dst
}

// Samples appends a record holding samples to dst: a Samples record, which
// drops the start timestamps, or a SamplesV2 record if e.STStorage is set.
func (e Encoder) Samples(dst []byte, samples []RefSample) []byte {
	if e.STStorage {
		return appendSamplesV2(dst, samples)
	}
	return appendSamplesV1(dst, samples)
}

// appendSamplesV1 writes the first sample's ref and T as big-endian bases,
// then every sample (the first included) as varint deltas to them plus the
// value's bits.
func appendSamplesV1(dst []byte, samples []RefSample) []byte {
	dst = append(dst, byte(Samples))
	if len(samples) == 0 {
		return dst
	}
	baseRef, baseT := int64(samples[0].Ref), samples[0].T
	dst = appendBE64(dst, uint64(baseRef))
	dst = appendBE64(dst, uint64(baseT))
	for i := range samples {
		s := &samples[i]
		dst = binary.AppendVarint(dst, int64(s.Ref)-baseRef)
		dst = binary.AppendVarint(dst, s.T-baseT)
		dst = appendFloat(dst, s.V)
	}
	return dst
}

// appendSamplesV2 writes the first sample with absolute varints, and every
// later one with its ref as a delta to the previous sample's, its T as a
// delta to the first sample's, and an ST marker.
func appendSamplesV2(dst []byte, samples []RefSample) []byte {
	dst = append(dst, byte(SamplesV2))
	if len(samples) == 0 {
		return dst
	}
	first := &samples[0]
	dst = binary.AppendVarint(dst, int64(first.Ref))
	dst = binary.AppendVarint(dst, first.T)
	dst = binary.AppendVarint(dst, first.ST)
	dst = appendFloat(dst, first.V)
	for i := 1; i < len(samples); i++ {
		s, prev := &samples[i], &samples[i-1]
		dst = binary.AppendVarint(dst, int64(s.Ref)-int64(prev.Ref))
		dst = binary.AppendVarint(dst, s.T-first.T)
		dst = appendST(dst, s.ST, first.ST, prev.ST)
		dst = appendFloat(dst, s.V)
	}
	return dst
}

// Tombstones appends a Tombstones record holding stones to dst, one entry per
// stone.
func (Encoder) Tombstones(dst []byte, stones []Stone) []byte {
	dst = append(dst, byte(Tombstones))
	for i := range stones {
		dst = appendBE64(dst, uint64(stones[i].Ref))
		dst = binary.AppendVarint(dst, stones[i].Mint)
		dst = binary.AppendVarint(dst, stones[i].Maxt)
	}
	return dst
}

// Exemplars appends an Exemplars record holding exemplars to dst.
func (Encoder) Exemplars(dst []byte, exemplars []RefExemplar) []byte {
	dst = append(dst, byte(Exemplars))
	if len(exemplars) == 0 {
		return dst
	}
	baseRef, baseT := int64(exemplars[0].Ref), exemplars[0].T
	dst = appendBE64(dst, uint64(baseRef))
	dst = appendBE64(dst, uint64(baseT))
	for i := range exemplars {
		e := &exemplars[i]
		dst = binary.AppendVarint(dst, int64(e.Ref)-baseRef)
		dst = binary.AppendVarint(dst, e.T-baseT)
		dst = appendFloat(dst, e.V)
		dst = appendLabels(dst, e.Labels)
	}
	return dst
}

// MmapMarkers appends an MmapMarkers record holding markers to dst.
func (Encoder) MmapMarkers(dst []byte, markers []RefMmapMarker) []byte {
	dst = append(dst, byte(MmapMarkers))
	for i := range markers {
		dst = appendBE64(dst, uint64(markers[i].Ref))
		dst = appendBE64(dst, markers[i].MmapRef)
	}
	return dst
}

// Names of the metadata fields Prometheus writes besides the type byte.
const (
	unitField = "UNIT"
	helpField = "HELP"
)

// Metadata appends a Metadata record holding meta to dst. Each entry gets
// exactly two fields, UNIT then HELP, even when they are empty.
func (Encoder) Metadata(dst []byte, meta []RefMetadata) []byte {
	dst = append(dst, byte(Metadata))
	for i := range meta {
		m := &meta[i]
		dst = binary.AppendUvarint(dst, uint64(m.Ref))
		dst = append(dst, byte(m.Type))
		dst = binary.AppendUvarint(dst, 2)
		dst = appendString(dst, unitField)
		dst = appendString(dst, m.Unit)
		dst = appendString(dst, helpField)
		dst = appendString(dst, m.Help)
	}
	return dst
}

// MinValidTime appends a MinValidTime record holding mint to dst. Prometheus
// writes it only into checkpoints.
func (Encoder) MinValidTime(dst []byte, mint int64) []byte {
	dst = append(dst, byte(MinValidTime))
	return appendBE64(dst, uint64(mint))
}
