// Package record encodes and decodes the records of a Prometheus write-ahead
// log (WAL), checkpoint and out-of-order WBL, byte for byte as Prometheus
// v0.316.0 writes them (its tsdb/record package). It knows nothing about
// segments, pages or compression: a record here is the decompressed payload
// a WAL reader hands out.
//
// # Record types
//
// A record's first byte is its Type. The rest, the payload, is laid out as
// below. "BE64" is a big-endian 8-byte integer, a float is the BE64 of its
// IEEE-754 bits (so NaNs and the stale marker survive unchanged), "varint"
// is a zig-zag signed varint and "uvarint" an unsigned one (both as in
// encoding/binary), and a string is a uvarint length followed by its bytes.
//
//   - Series (1): until the record ends, a ref (BE64) and a label set.
//   - Samples (2): empty for no samples. Otherwise the first sample's ref and
//     timestamp as BE64 bases, then for every sample, the first included, the
//     ref and timestamp as varint deltas to those bases and the value as a
//     float. Start timestamps are not stored.
//   - SamplesV2 (11): empty for no samples. The first sample as varint ref,
//     varint T, varint ST and float value; each later one as a varint ref delta
//     to the previous sample, a varint T delta to the first sample, an ST
//     marker and the float value.
//   - Tombstones (3): until the record ends, a ref (BE64) and a deleted range
//     as varint mint and maxt. A series with several ranges repeats its ref.
//   - Exemplars (4): empty for none; otherwise framed like Samples, with each
//     exemplar's label set after its value.
//   - MmapMarkers (5): until the record ends, a series ref and a chunk
//     reference, both BE64. Only the out-of-order WBL holds them.
//   - Metadata (6): until the record ends, a uvarint ref, the metric type
//     byte, a uvarint field count and that many name/value string pairs.
//     Prometheus writes two fields, UNIT and HELP; other names are skipped.
//   - HistogramSamples (7) and CustomBucketsHistogramSamples (9): framed
//     like Samples, each entry followed by an integer histogram: counter-reset
//     hint byte, varint schema, float zero threshold, uvarint zero count,
//     uvarint count, float sum, positive then negative spans (uvarint count,
//     then varint offset and uvarint length each), positive then negative
//     buckets (uvarint count, then varint deltas as the histogram model keeps
//     them), and, only for the custom-buckets schema -53, the custom bounds
//     (uvarint count, then floats). Without start timestamps, Prometheus puts
//     custom-bucket histograms in records of type 9 and the others in type 7.
//   - FloatHistogramSamples (8) and CustomBucketsFloatHistogramSamples (10):
//     the same, but zero count, count and the (absolute) bucket values are
//     floats.
//   - HistogramSamplesV2 (12) and FloatHistogramSamplesV2 (13): framed like
//     SamplesV2, with a histogram in place of the value. Custom-bucket
//     histograms share these records with the others.
//   - MinValidTime (14): one BE64 timestamp, the mint a WAL truncation used.
//     Only checkpoints hold it.
//
// A label set is a uvarint count followed by that many name and value
// strings, in the order the labels.Labels holds them (sorted by name). There
// is no symbol table.
//
// The ST marker of a V2 entry after the first is one byte: 0 if the entry's
// start timestamp is 0 (unknown), 1 if it equals the previous entry's, or 2
// followed by a varint delta to the first entry's start timestamp. The
// encoder tests in that order, so a zero ST is always written as 0. The
// decoder, as upstream's, reads any byte other than 0 and 1 as 2.
//
// # Encoding and decoding
//
// Encoder methods append a record to a caller's byte slice and allocate
// nothing when it has room. Decoder methods append the entries of a record
// to a caller's slice and return it, so a reader can keep one slice per type
// and truncate it between records; decoding samples and histograms into such
// a warm slice allocates nothing (histograms are decoded into the ones left
// in the slice's spare capacity). Label sets, unit and help strings do
// allocate, since they outlive the record: one allocation per label set and
// per non-empty string.
//
// The histogram decoders apply upstream's schema rules: a histogram whose
// schema is neither custom buckets nor within the range reserved for
// exponential schemas (-9 to 52) is dropped and counted
// (Decoder.SkippedHistograms), and one with a schema from 9 to 52, which a
// newer Prometheus may write, has its resolution reduced to schema 8.
//
// The encoders write the V1 histogram types the way upstream's callers use
// upstream's encoder: exponential histograms in one record, custom-bucket
// ones in a second, either of which may be absent; see
// Encoder.HistogramSamples.
//
// # Errors
//
// Decoders never panic, never read past the record and never size a slice
// by a count the record could not back, whatever it holds. A record that is
// empty, cut short, holds a count larger than the bytes left could satisfy,
// or has junk after its last entry that cannot be read as an entry, gives an
// error wrapping ErrShortRecord; an over-long varint gives ErrBadVarint;
// bytes left after a MinValidTime record's timestamp give ErrTrailingBytes.
// A V1 record that holds its base ref and time but no entries is accepted as
// empty, as upstream accepts it; a V2 histogram record that ends after the
// first entry's ref, T and ST is not (upstream returns no entries and no
// error for it).
//
// A record of a known type passed to the wrong method gives ErrWrongType. A
// first byte that is no known type gives an UnknownTypeError, which a WAL
// reader should count and skip: newer Prometheus versions may write types
// this package does not know. Decoder.TypeOf tells the type without
// decoding.
package record
