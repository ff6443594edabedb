package record

import (
	"encoding/binary"
	"math"
)

// decbuf reads the fields of one record front to back. Its error is sticky:
// the first failure is kept, the remaining input is dropped, and every later
// read returns zero, so a decode loop only has to check the error once per
// entry and always terminates (each successful read consumes at least one
// byte; a failed one empties the buffer).
type decbuf struct {
	b     []byte // unread input
	size  int    // length of the whole record, to report offsets
	err   error  // first failure
	errAt int    // offset of the first failure in the record
}

// newDecbuf returns a decbuf over rec positioned after the type byte.
// rec must not be empty.
func newDecbuf(rec []byte) decbuf {
	return decbuf{b: rec[1:], size: len(rec)}
}

// fail records err (unless an earlier error is already kept) and drops the
// rest of the input.
func (d *decbuf) fail(err error) {
	if d.err == nil {
		d.err = err
		d.errAt = d.size - len(d.b)
	}
	d.b = nil
}

// byte reads one byte.
func (d *decbuf) byte() byte {
	if len(d.b) == 0 {
		d.fail(ErrShortRecord)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// be64 reads a big-endian uint64.
func (d *decbuf) be64() uint64 {
	if len(d.b) < 8 {
		d.fail(ErrShortRecord)
		return 0
	}
	x := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return x
}

// float reads a big-endian IEEE-754 float64.
func (d *decbuf) float() float64 { return math.Float64frombits(d.be64()) }

// uvarint reads an unsigned varint, handling the common one-byte case
// before falling back to the general loop.
func (d *decbuf) uvarint() uint64 {
	if b := d.b; len(b) > 0 && b[0] < 0x80 {
		d.b = b[1:]
		return uint64(b[0])
	}
	return d.uvarintSlow()
}

// uvarintSlow reads a multi-byte unsigned varint. It accepts what
// encoding/binary.Uvarint accepts: at most ten bytes, the tenth at most 1.
func (d *decbuf) uvarintSlow() uint64 {
	var x uint64
	var s uint
	for i, c := range d.b {
		if i == binary.MaxVarintLen64 {
			break
		}
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				d.fail(ErrBadVarint)
				return 0
			}
			d.b = d.b[i+1:]
			return x | uint64(c)<<s
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	if len(d.b) >= binary.MaxVarintLen64 {
		d.fail(ErrBadVarint)
	} else {
		d.fail(ErrShortRecord)
	}
	return 0
}

// varint reads a zig-zag encoded signed varint, with the same one-byte
// shortcut as uvarint.
func (d *decbuf) varint() int64 {
	if b := d.b; len(b) > 0 && b[0] < 0x80 {
		d.b = b[1:]
		return unzigzag(uint64(b[0]))
	}
	return unzigzag(d.uvarintSlow())
}

// unzigzag maps 0, 1, 2, 3, ... back to 0, -1, 1, -2, ...
func unzigzag(ux uint64) int64 { return int64(ux>>1) ^ -int64(ux&1) }

// count reads a uvarint item count and checks that the rest of the record
// can hold that many items of at least minSize bytes each, so that callers
// may size slices by it without trusting the input.
func (d *decbuf) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/minSize) {
		d.fail(ErrShortRecord)
		return 0
	}
	return int(n)
}

// bytes reads a uvarint length and that many bytes. The result aliases the
// record.
func (d *decbuf) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(ErrShortRecord)
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

// done returns the decode error, if any, or a trailing-bytes error if input
// is left over.
func (d *decbuf) done(t Type) error {
	if d.err != nil {
		return decodeError(t, d)
	}
	if len(d.b) > 0 {
		return trailingError(t, len(d.b))
	}
	return nil
}

// peekVarint decodes a zig-zag varint of one or two bytes, the usual sizes
// in sample records, at the start of p. Unlike the decbuf methods it is
// small enough to be inlined, which roughly halves the cost of decoding a
// sample. It returns n == 0 for anything else, leaving the general case (and
// the errors) to decbuf.varint.
func peekVarint(p []byte) (x int64, n int) {
	var ux uint64
	switch {
	case len(p) >= 1 && p[0] < 0x80:
		ux, n = uint64(p[0]), 1
	case len(p) >= 2 && p[1] < 0x80:
		ux, n = uint64(p[0]&0x7f)|uint64(p[1])<<7, 2
	default:
		return 0, 0
	}
	return unzigzag(ux), n
}
