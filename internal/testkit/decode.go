package testkit

import (
	"errors"
	"fmt"
	"mime"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// protoRW2 is the Content-Type's proto parameter of a Remote-Write 2.0
// request; any other request is read as Remote-Write 1.0.
const protoRW2 = "io.prometheus.write.v2.Request"

// isRW2 says whether contentType names a Remote-Write 2.0 request.
func isRW2(contentType string) bool {
	_, params, err := mime.ParseMediaType(contentType)
	return err == nil && params["proto"] == protoRW2
}

// decode reads a snappy-compressed RW1 or RW2 body: its series, and over
// RW1 its metadata.
func decode(body []byte, rw2 bool) ([]Series, []prompb.MetricMetadata, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, nil, fmt.Errorf("snappy: %w", err)
	}
	if rw2 {
		series, err := decodeRW2(raw)
		return series, nil, err
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		return nil, nil, fmt.Errorf("RW1 request: %w", err)
	}
	sb := labels.NewScratchBuilder(0)
	series := make([]Series, len(wr.Timeseries))
	for i, ts := range wr.Timeseries {
		series[i] = Series{Labels: ts.ToLabels(&sb, nil), Samples: ts.Samples, Histograms: len(ts.Histograms), Exemplars: len(ts.Exemplars)}
	}
	return series, wr.Metadata, nil
}

// decodeRW2 reads an RW2 request, checking what the spec asks of it: the
// symbol table starts with "" and holds no string twice, and every
// reference (labels, exemplar labels, help, unit) is in it.
func decodeRW2(raw []byte) ([]Series, error) {
	var wr writev2.Request
	if err := wr.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("RW2 request: %w", err)
	}
	if len(wr.Symbols) == 0 || wr.Symbols[0] != "" {
		return nil, fmt.Errorf("RW2 symbols do not start with the empty string: %q", wr.Symbols)
	}
	seen := make(map[string]bool, len(wr.Symbols))
	for _, s := range wr.Symbols {
		if seen[s] {
			return nil, fmt.Errorf("RW2 symbol %q twice", s)
		}
		seen[s] = true
	}
	sb := labels.NewScratchBuilder(0)
	series := make([]Series, len(wr.Timeseries))
	for i, ts := range wr.Timeseries {
		ls, err := ts.ToLabels(&sb, wr.Symbols)
		if err == nil {
			_, err = ts.ToMetadata(wr.Symbols)
		}
		for _, e := range ts.Exemplars {
			_, exErr := e.ToExemplar(&sb, wr.Symbols)
			err = errors.Join(err, exErr)
		}
		if err != nil {
			return nil, fmt.Errorf("RW2 series %d: %w", i, err)
		}
		samples := make([]prompb.Sample, len(ts.Samples))
		for j, s := range ts.Samples {
			samples[j] = prompb.Sample{Value: s.Value, Timestamp: s.Timestamp}
		}
		series[i] = Series{Labels: ls, Samples: samples, Histograms: len(ts.Histograms), Exemplars: len(ts.Exemplars), Type: ts.Metadata.Type}
	}
	return series, nil
}
