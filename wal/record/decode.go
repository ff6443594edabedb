package record

import (
	"encoding/binary"
	"math"
	"slices"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// Decoder decodes WAL records. The zero value is ready to use. A Decoder
// keeps a scratch label builder and a counter, so it must not be used by
// several goroutines at once; give each reader its own.
//
// Every decode method appends to the dst slice it is given and returns the
// extended slice, growing it only when its capacity does not suffice. On
// error it returns dst with its original length, so the buffer can be kept,
// and nothing of the record is appended.
type Decoder struct {
	lb      labels.ScratchBuilder
	lbReady bool   // lb has been created and told that added strings alias the record
	skipped uint64 // histograms dropped for an unknown schema
}

// TypeOf returns the type of rec: its first byte if that is a known type,
// Unknown for an empty record or an unknown type byte.
func (*Decoder) TypeOf(rec []byte) Type {
	if len(rec) == 0 || !Type(rec[0]).known() {
		return Unknown
	}
	return Type(rec[0])
}

// known reports whether t is one of the record types this package decodes.
func (t Type) known() bool {
	return t >= Series && t <= MinValidTime
}

// SkippedHistograms returns how many histogram samples this Decoder has
// dropped so far because their schema is unknown (neither custom buckets nor
// within the exponential range reserved for future use, -9 to 52). Upstream
// logs a warning for each; this package counts them instead.
func (d *Decoder) SkippedHistograms() uint64 { return d.skipped }

// aliasString returns a string sharing b's memory, for handing name and value
// bytes to the label builder, which copies them into the labels it builds.
func aliasString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// labels reads one label set: a count, then name and value strings. The
// builder copies the strings into the returned set (one allocation with the
// default stringlabels build), so nothing returned aliases the record.
func (d *Decoder) labels(b *decbuf) labels.Labels {
	if !d.readLabels(b) {
		return labels.EmptyLabels()
	}
	return d.lb.Labels()
}

// readLabels reads one label set into the builder; false when it does not
// decode.
func (d *Decoder) readLabels(b *decbuf) bool {
	if !d.lbReady {
		// Created lazily to keep the zero Decoder usable: with the
		// dedupelabels build tag a zero ScratchBuilder has no symbol table.
		d.lb = labels.NewScratchBuilder(0)
		d.lb.SetUnsafeAdd(true)
		d.lbReady = true
	}
	d.lb.Reset()
	n := b.count(2)
	for range n {
		name := b.bytes()
		value := b.bytes()
		if b.err != nil {
			return false
		}
		d.lb.Add(aliasString(name), aliasString(value))
	}
	return b.err == nil
}

// Series appends the series of a Series record to dst. Each label set costs
// one allocation (with the default stringlabels build); labels are kept in
// record order, which writers keep sorted by name.
func (d *Decoder) Series(rec []byte, dst []RefSeries) ([]RefSeries, error) {
	if _, err := checkType(rec, Series); err != nil {
		return dst, err
	}
	n0 := len(dst)
	b := newDecbuf(rec)
	for len(b.b) > 0 {
		ref := b.be64()
		ls := d.labels(&b)
		if b.err != nil {
			break
		}
		dst = append(dst, RefSeries{Ref: Ref(ref), Labels: ls})
	}
	if err := b.done(Series); err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// EachSeries calls f with each series of a Series record, in order. Unlike
// Series it allocates nothing once warm: every label set is written into
// one buffer the Decoder reuses, so a set, and every string taken from it,
// is valid only during its call of f. A record that does not decode
// returns an error; the series before the damage were handed to f.
func (d *Decoder) EachSeries(rec []byte, f func(RefSeries)) error {
	if _, err := checkType(rec, Series); err != nil {
		return err
	}
	b := newDecbuf(rec)
	for len(b.b) > 0 {
		ref := b.be64()
		if !d.readLabels(&b) {
			break
		}
		var ls labels.Labels
		d.lb.Overwrite(&ls)
		f(RefSeries{Ref: Ref(ref), Labels: ls})
	}
	return b.done(Series)
}

// Samples appends the samples of a Samples or SamplesV2 record to dst.
// Samples records carry no start timestamps, so ST is 0 for them. It first
// makes room in dst for as many samples as the record's size allows (one per
// 10 bytes), so it does not allocate when dst is reused from an earlier
// record of the same size.
//
// Unlike upstream, a SamplesV2 record decodes correctly whatever dst already
// holds: upstream recognises the first sample of the record by an empty
// output slice and misreads the record when handed a non-empty one, and
// drops what dst held when it has to grow it.
func (*Decoder) Samples(rec []byte, dst []RefSample) ([]RefSample, error) {
	t, err := checkType(rec, Samples, SamplesV2)
	if err != nil {
		return dst, err
	}
	n0 := len(dst)
	b := newDecbuf(rec)
	if t == Samples {
		dst = samplesV1(&b, dst)
	} else {
		dst = samplesV2(&b, dst)
	}
	if err := b.done(t); err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// samplesV1 decodes the body of a Samples record.
func samplesV1(b *decbuf, dst []RefSample) []RefSample {
	if len(b.b) == 0 {
		return dst
	}
	baseRef := b.be64()
	baseT := int64(b.be64())
	// A sample takes at least 10 bytes: two one-byte varints and the value.
	dst = slices.Grow(dst, len(b.b)/10)
	out := dst[len(dst):cap(dst)]
	k := 0
	p := b.b
	for len(p) >= 12 && k < len(out) {
		// Fast path, inlined: both deltas take one or two bytes and the
		// record holds at least the longest such sample.
		var dref, dt uint64
		var n int
		if c := p[0]; c < 0x80 {
			dref, n = uint64(c), 1
		} else if p[1] < 0x80 {
			dref, n = uint64(c&0x7f)|uint64(p[1])<<7, 2
		} else {
			break
		}
		if c := p[n]; c < 0x80 {
			dt, n = uint64(c), n+1
		} else if p[n+1] < 0x80 {
			dt, n = uint64(c&0x7f)|uint64(p[n+1])<<7, n+2
		} else {
			break
		}
		out[k] = RefSample{
			Ref: Ref(baseRef + uint64(unzigzag(dref))),
			T:   baseT + unzigzag(dt),
			V:   math.Float64frombits(binary.BigEndian.Uint64(p[n : n+8])),
		}
		k++
		p = p[n+8:]
	}
	dst = dst[:len(dst)+k]
	b.b = p
	for len(b.b) > 0 {
		dref, dt, v := b.varint(), b.varint(), b.be64()
		if b.err != nil {
			break
		}
		dst = append(dst, RefSample{
			Ref: Ref(baseRef + uint64(dref)),
			T:   baseT + dt,
			V:   math.Float64frombits(v),
		})
	}
	return dst
}

// readST reads the start timestamp marker of a V2 entry after the first.
// Like upstream, any marker byte other than "none" and "same" means an
// explicit delta follows.
func readST(b *decbuf, firstST, prevST int64) int64 {
	switch b.byte() {
	case stNone:
		return 0
	case stSame:
		return prevST
	default:
		return firstST + b.varint()
	}
}

// samplesV2 decodes the body of a SamplesV2 record.
func samplesV2(b *decbuf, dst []RefSample) []RefSample {
	if len(b.b) == 0 {
		return dst
	}
	// A sample takes at least 11 bytes: three one-byte fields and the value.
	dst = slices.Grow(dst, len(b.b)/11)
	first := RefSample{Ref: Ref(b.varint()), T: b.varint(), ST: b.varint()}
	first.V = math.Float64frombits(b.be64())
	if b.err != nil {
		return dst
	}
	dst = append(dst, first)
	prevRef, prevST := int64(first.Ref), first.ST
	for len(b.b) > 0 {
		// Fast path, inlined: the deltas take one or two bytes each.
		p := b.b
		dref, n1 := peekVarint(p)
		dt, n2 := peekVarint(p[n1:])
		n := n1 + n2
		ok := n1 != 0 && n2 != 0 && len(p) > n
		var st int64
		if ok {
			switch p[n] {
			case stNone:
				n++
			case stSame:
				st = prevST
				n++
			default:
				d, n3 := peekVarint(p[n+1:])
				st, n, ok = first.ST+d, n+1+n3, n3 != 0
			}
		}
		var v uint64
		if ok && len(p) >= n+8 {
			v = binary.BigEndian.Uint64(p[n:])
			b.b = p[n+8:]
		} else {
			dref, dt = b.varint(), b.varint()
			st = readST(b, first.ST, prevST)
			v = b.be64()
			if b.err != nil {
				break
			}
		}
		ref := prevRef + dref
		dst = append(dst, RefSample{Ref: Ref(ref), ST: st, T: first.T + dt, V: math.Float64frombits(v)})
		prevRef, prevST = ref, st
	}
	return dst
}

// Tombstones appends the deleted ranges of a Tombstones record to dst, one
// Stone per interval.
func (*Decoder) Tombstones(rec []byte, dst []Stone) ([]Stone, error) {
	if _, err := checkType(rec, Tombstones); err != nil {
		return dst, err
	}
	n0 := len(dst)
	b := newDecbuf(rec)
	for len(b.b) > 0 {
		ref := b.be64()
		mint := b.varint()
		maxt := b.varint()
		if b.err != nil {
			break
		}
		dst = append(dst, Stone{Ref: Ref(ref), Mint: mint, Maxt: maxt})
	}
	if err := b.done(Tombstones); err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// Exemplars appends the exemplars of an Exemplars record to dst. Each label
// set costs one allocation, as in Series.
func (d *Decoder) Exemplars(rec []byte, dst []RefExemplar) ([]RefExemplar, error) {
	if _, err := checkType(rec, Exemplars); err != nil {
		return dst, err
	}
	n0 := len(dst)
	b := newDecbuf(rec)
	if len(b.b) > 0 {
		baseRef := b.be64()
		baseT := int64(b.be64())
		for len(b.b) > 0 {
			dref := b.varint()
			dt := b.varint()
			v := b.be64()
			ls := d.labels(&b)
			if b.err != nil {
				break
			}
			dst = append(dst, RefExemplar{
				Ref:    Ref(baseRef + uint64(dref)),
				T:      baseT + dt,
				V:      math.Float64frombits(v),
				Labels: ls,
			})
		}
	}
	if err := b.done(Exemplars); err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// MmapMarkers appends the markers of an MmapMarkers record to dst.
func (*Decoder) MmapMarkers(rec []byte, dst []RefMmapMarker) ([]RefMmapMarker, error) {
	if _, err := checkType(rec, MmapMarkers); err != nil {
		return dst, err
	}
	n0 := len(dst)
	b := newDecbuf(rec)
	for len(b.b) > 0 {
		ref := b.be64()
		mref := b.be64()
		if b.err != nil {
			break
		}
		dst = append(dst, RefMmapMarker{Ref: Ref(ref), MmapRef: mref})
	}
	if err := b.done(MmapMarkers); err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// Metadata appends the entries of a Metadata record to dst. Of each entry's
// fields it keeps UNIT and HELP (the last one if a name repeats) and skips
// the others; the type byte is kept as it is, even if it is not one of the
// MetricType constants. Each non-empty unit and help string is one
// allocation.
func (*Decoder) Metadata(rec []byte, dst []RefMetadata) ([]RefMetadata, error) {
	if _, err := checkType(rec, Metadata); err != nil {
		return dst, err
	}
	n0 := len(dst)
	b := newDecbuf(rec)
	for len(b.b) > 0 {
		ref := b.uvarint()
		typ := b.byte()
		var unit, help []byte
		for range b.count(2) {
			name := b.bytes()
			value := b.bytes()
			if b.err != nil {
				break
			}
			switch string(name) {
			case unitField:
				unit = value
			case helpField:
				help = value
			}
		}
		if b.err != nil {
			break
		}
		dst = append(dst, RefMetadata{
			Ref:  Ref(ref),
			Type: MetricType(typ),
			Unit: string(unit),
			Help: string(help),
		})
	}
	if err := b.done(Metadata); err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// MinValidTime returns the mint held by a MinValidTime record.
func (*Decoder) MinValidTime(rec []byte) (int64, error) {
	if _, err := checkType(rec, MinValidTime); err != nil {
		return 0, err
	}
	b := newDecbuf(rec)
	mint := int64(b.be64())
	if err := b.done(MinValidTime); err != nil {
		return 0, err
	}
	return mint, nil
}
