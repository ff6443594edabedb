package receiver

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/walship/walship/bench/shape"
)

// counts is what one request held.
type counts struct {
	sum        shape.Sum
	histograms int64
	exemplars  int64
	metadata   int64
}

// decoder walks remote-write requests field by field, without allocating
// once its slices are grown: every label, sample, histogram and exemplar
// is read, and every sample added to the request's Sum.
type decoder struct {
	hasher  shape.SeriesHasher
	symbols [][]byte
}

var errMalformed = errors.New("malformed protobuf")

// field returns the next field of b: its number, wire type, value bytes
// (for length-delimited fields), scalar value (varint and fixed fields),
// and the rest of b.
func field(b []byte) (num protowire.Number, typ protowire.Type, bytes []byte, scalar uint64, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, 0, nil, errMalformed
	}
	b = b[n:]
	switch typ {
	case protowire.BytesType:
		bytes, n = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		scalar, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		scalar, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		scalar = uint64(v)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return 0, 0, nil, 0, nil, errMalformed
	}
	return num, typ, bytes, scalar, b[n:], nil
}

// sample reads a Sample message: value (1, double) and timestamp (2).
func sample(b []byte) (t int64, v float64, err error) {
	for len(b) > 0 {
		num, _, _, scalar, rest, err := field(b)
		if err != nil {
			return 0, 0, err
		}
		switch num {
		case 1:
			v = math.Float64frombits(scalar)
		case 2:
			t = int64(scalar)
		}
		b = rest
	}
	return t, v, nil
}

// rw1 decodes a prometheus.WriteRequest: timeseries (1) of labels (1),
// samples (2), exemplars (3) and histograms (4); metadata (3).
func (d *decoder) rw1(b []byte) (c counts, err error) {
	for len(b) > 0 {
		num, _, ts, _, rest, err := field(b)
		if err != nil {
			return c, err
		}
		switch num {
		case 1:
			if err := d.rw1Series(ts, &c); err != nil {
				return c, err
			}
		case 3:
			c.metadata++
		}
		b = rest
	}
	return c, nil
}

func (d *decoder) rw1Series(ts []byte, c *counts) error {
	d.hasher.Reset()
	for b := ts; len(b) > 0; {
		num, _, val, _, rest, err := field(b)
		if err != nil {
			return err
		}
		if num == 1 {
			var name, value []byte
			for l := val; len(l) > 0; {
				n, _, s, _, r, err := field(l)
				if err != nil {
					return err
				}
				switch n {
				case 1:
					name = s
				case 2:
					value = s
				}
				l = r
			}
			d.hasher.Label(name, value)
		}
		b = rest
	}
	return countFields(ts, d.hasher.Sum64(), rw1Fields, c)
}

// seriesFields are the field numbers of a TimeSeries' samples,
// histograms, exemplars and metadata in one protocol.
type seriesFields struct{ samples, histograms, exemplars, metadata protowire.Number }

var (
	rw1Fields = seriesFields{samples: 2, exemplars: 3, histograms: 4}
	rw2Fields = seriesFields{samples: 2, histograms: 3, exemplars: 4, metadata: 5}
)

// countFields adds to c the samples (of the series whose hash is series),
// histograms, exemplars and metadata of the TimeSeries message ts.
func countFields(ts []byte, series uint64, f seriesFields, c *counts) error {
	for b := ts; len(b) > 0; {
		num, _, val, _, rest, err := field(b)
		if err != nil {
			return err
		}
		switch num {
		case f.samples:
			t, v, err := sample(val)
			if err != nil {
				return err
			}
			c.sum.Add(series, t, v)
		case f.histograms:
			c.histograms++
		case f.exemplars:
			c.exemplars++
		case f.metadata:
			c.metadata++
		}
		b = rest
	}
	return nil
}

// rw2 decodes an io.prometheus.write.v2.Request: symbols (4) and
// timeseries (5) of labels_refs (1), samples (2), histograms (3),
// exemplars (4) and metadata (5).
func (d *decoder) rw2(b []byte) (c counts, err error) {
	d.symbols = d.symbols[:0]
	for r := b; len(r) > 0; {
		num, _, s, _, rest, err := field(r)
		if err != nil {
			return c, err
		}
		if num == 4 {
			d.symbols = append(d.symbols, s)
		}
		r = rest
	}
	for len(b) > 0 {
		num, _, ts, _, rest, err := field(b)
		if err != nil {
			return c, err
		}
		if num == 5 {
			if err := d.rw2Series(ts, &c); err != nil {
				return c, err
			}
		}
		b = rest
	}
	return c, nil
}

func (d *decoder) symbol(ref uint64) ([]byte, error) {
	if ref >= uint64(len(d.symbols)) {
		return nil, fmt.Errorf("symbol %d of %d: %w", ref, len(d.symbols), errMalformed)
	}
	return d.symbols[ref], nil
}

func (d *decoder) rw2Series(ts []byte, c *counts) error {
	d.hasher.Reset()
	var name []byte
	odd := false
	label := func(ref uint64) error {
		s, err := d.symbol(ref)
		if err != nil {
			return err
		}
		if !odd {
			name = s
		} else {
			d.hasher.Label(name, s)
		}
		odd = !odd
		return nil
	}
	for b := ts; len(b) > 0; {
		num, typ, val, scalar, rest, err := field(b)
		if err != nil {
			return err
		}
		if num == 1 {
			if typ == protowire.VarintType {
				if err := label(scalar); err != nil {
					return err
				}
			}
			for p := val; len(p) > 0; {
				ref, n := protowire.ConsumeVarint(p)
				if n < 0 {
					return errMalformed
				}
				if err := label(ref); err != nil {
					return err
				}
				p = p[n:]
			}
		}
		b = rest
	}
	if odd {
		return fmt.Errorf("odd number of label refs: %w", errMalformed)
	}
	return countFields(ts, d.hasher.Sum64(), rw2Fields, c)
}
