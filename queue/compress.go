package queue

import (
	"encoding/binary"
	"slices"

	"github.com/golang/snappy"
)

// This file compresses request bodies with snappy's block format, block
// by block while the body is written, into a buffer each flight reuses.

// snappyBlockSize is how much input golang/snappy compresses as one block:
// its Encode cuts the input into blocks of 64 KiB, compresses each on its
// own (no back-reference crosses a block) and writes them one after
// another behind the length of the whole input.
const snappyBlockSize = 64 << 10

// snappyHeaderRoom is the room kept for that length: a varint of a request
// body, which is far below 4 GiB.
const snappyHeaderRoom = binary.MaxVarintLen32

// snappyStream compresses a request body block by block while it is being
// built, so that a block is compressed while its bytes are still in the
// CPU's cache and the uncompressed body never needs more than one block of
// memory. Its output is byte for byte what snappy.Encode gives for the
// whole body. Its buffer is reused: a body it returns is valid until the
// next reset.
type snappyStream struct {
	buf []byte // header room, then the compressed blocks
	raw int    // uncompressed bytes compressed so far
}

// reset starts a new body.
func (c *snappyStream) reset() {
	c.buf = slices.Grow(c.buf[:0], snappyHeaderRoom)[:snappyHeaderRoom]
	c.raw = 0
}

// block compresses p, a whole block or the body's last part, and appends it.
func (c *snappyStream) block(p []byte) {
	c.buf = slices.Grow(c.buf, snappy.MaxEncodedLen(len(p)))
	free := c.buf[len(c.buf):cap(c.buf)]
	enc := snappy.Encode(free, p) // p's own length, then its block
	_, k := binary.Uvarint(enc)
	n := copy(free, enc[k:])
	c.buf = c.buf[:len(c.buf)+n]
	c.raw += len(p)
}

// whole compresses the whole body raw at once and returns it.
func (c *snappyStream) whole(raw []byte) []byte {
	c.reset()
	for len(raw) > snappyBlockSize {
		c.block(raw[:snappyBlockSize])
		raw = raw[snappyBlockSize:]
	}
	return c.finish(raw)
}

// finish compresses the body's last part rest and returns the compressed
// body: the length of everything compressed, then the blocks.
func (c *snappyStream) finish(rest []byte) []byte {
	if len(rest) > 0 {
		c.block(rest)
	}
	var h [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(h[:], uint64(c.raw))
	start := snappyHeaderRoom - k
	copy(c.buf[start:], h[:k])
	return c.buf[start:]
}
