package record

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// Type is the first byte of every record: it says how the rest is laid out.
type Type uint8

// The record types Prometheus 3.x writes. Their numbers are part of the
// on-disk format and never change.
const (
	Series                             Type = 1
	Samples                            Type = 2
	Tombstones                         Type = 3
	Exemplars                          Type = 4
	MmapMarkers                        Type = 5
	Metadata                           Type = 6
	HistogramSamples                   Type = 7
	FloatHistogramSamples              Type = 8
	CustomBucketsHistogramSamples      Type = 9
	CustomBucketsFloatHistogramSamples Type = 10
	SamplesV2                          Type = 11
	HistogramSamplesV2                 Type = 12
	FloatHistogramSamplesV2            Type = 13
	MinValidTime                       Type = 14
	// Unknown is what TypeOf reports for an empty record or a type byte
	// this package does not know. It is never written.
	Unknown Type = 255
)

// String returns the name upstream uses for the type, which is also the
// value of the "type" label on prometheus_wal_watcher_records_read_total.
func (t Type) String() string {
	switch t {
	case Series:
		return "series"
	case Samples:
		return "samples"
	case Tombstones:
		return "tombstones"
	case Exemplars:
		return "exemplars"
	case MmapMarkers:
		return "mmapmarkers"
	case Metadata:
		return "metadata"
	case HistogramSamples:
		return "histogram_samples"
	case FloatHistogramSamples:
		return "float_histogram_samples"
	case CustomBucketsHistogramSamples:
		return "custom_buckets_histogram_samples"
	case CustomBucketsFloatHistogramSamples:
		return "custom_buckets_float_histogram_samples"
	case SamplesV2:
		return "samples_v2"
	case HistogramSamplesV2:
		return "histogram_samples_v2"
	case FloatHistogramSamplesV2:
		return "float_histogram_samples_v2"
	case MinValidTime:
		return "min_valid_time"
	default:
		return "unknown"
	}
}

// Ref identifies a series within one WAL. Series records introduce a ref
// with its labels; every later record refers to the series by it.
type Ref uint64

// Position is a place in a WAL: a segment index and a byte offset inside
// that segment. Positions order records: a record at a smaller Position was
// written earlier.
type Position struct {
	Segment int
	Offset  int64
}

// Less reports whether p comes before q in the log.
func (p Position) Less(q Position) bool {
	if p.Segment != q.Segment {
		return p.Segment < q.Segment
	}
	return p.Offset < q.Offset
}

// String formats p as "segment:offset".
func (p Position) String() string { return fmt.Sprintf("%08d:%d", p.Segment, p.Offset) }

// Span is where a record lies in the log: Start is its first byte, End the
// first byte after it. A reader started at Start reads the record again; one
// started at End reads the record after it.
type Span struct {
	Start, End Position
}

// RefSeries is a series ref with its labels.
type RefSeries struct {
	Ref    Ref
	Labels labels.Labels
}

// RefSample is one float sample of a series. ST is the start (created)
// timestamp, zero when unknown; only V2 records store it.
type RefSample struct {
	Ref   Ref
	ST, T int64
	V     float64
}

// RefHistogramSample is one integer native histogram sample of a series.
type RefHistogramSample struct {
	Ref   Ref
	ST, T int64
	H     *histogram.Histogram
}

// RefFloatHistogramSample is one float native histogram sample of a series.
type RefFloatHistogramSample struct {
	Ref   Ref
	ST, T int64
	FH    *histogram.FloatHistogram
}

// RefExemplar is one exemplar attached to a series.
type RefExemplar struct {
	Ref    Ref
	T      int64
	V      float64
	Labels labels.Labels
}

// MetricType is the metric type byte of a metadata record.
type MetricType uint8

// Metric types as stored in metadata records.
const (
	UnknownMetricType MetricType = 0
	Counter           MetricType = 1
	Gauge             MetricType = 2
	Histogram         MetricType = 3
	GaugeHistogram    MetricType = 4
	Summary           MetricType = 5
	Info              MetricType = 6
	Stateset          MetricType = 7
)

// String returns the metric type's name as Prometheus's text formats and
// model.MetricType spell it ("counter", "gaugehistogram", ...).
func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Histogram:
		return "histogram"
	case GaugeHistogram:
		return "gaugehistogram"
	case Summary:
		return "summary"
	case Info:
		return "info"
	case Stateset:
		return "stateset"
	}
	return "unknown"
}

// RefMetadata is the type, unit and help text of a series.
type RefMetadata struct {
	Ref  Ref
	Type MetricType
	Unit string
	Help string
}

// Stone is one deleted time range of a series, as tombstone records hold them.
type Stone struct {
	Ref        Ref
	Mint, Maxt int64
}

// RefMmapMarker says that a series' samples up to now were memory-mapped to
// the given chunk reference (out-of-order WBL only).
type RefMmapMarker struct {
	Ref     Ref
	MmapRef uint64
}
