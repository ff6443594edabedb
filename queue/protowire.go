package queue

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// This file holds the protobuf wire helpers both encoders share: varints,
// zigzag, and the sizes and encodings of proto3 scalar and packed fields as
// gogo writes them (zero values and empty fields left out).

// pbPackedFieldSize is the size of a packed repeated field whose payload is n
// bytes, with a tag of tagLen bytes; an empty one is not written at all.
func pbPackedFieldSize(tagLen, n int) int {
	if n == 0 {
		return 0
	}
	return tagLen + pbVarintSize(uint64(n)) + n
}

// pbVarintSize is the length of x as a protobuf varint.
func pbVarintSize(x uint64) int {
	return (bits.Len64(x|1) + 6) / 7
}

func pbAppendVarint(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

func pbZigzag32(v int32) uint64 { return uint64(uint32(v)<<1 ^ uint32(v>>31)) }

func pbZigzag64(v int64) uint64 { return uint64(v)<<1 ^ uint64(v>>63) }

// pbStringFieldSize is the size of a proto3 string field with a one-byte
// tag; empty strings are not written.
func pbStringFieldSize(s string) int {
	if len(s) == 0 {
		return 0
	}
	return 1 + pbVarintSize(uint64(len(s))) + len(s)
}

func pbAppendString(b []byte, tag byte, s string) []byte {
	if len(s) == 0 {
		return b
	}
	b = append(b, tag)
	b = pbAppendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// pbDoubleFieldSize is the size of a proto3 double field. gogo leaves out
// values that compare equal to 0, so -0.0 is not written either (a receiver
// reads +0).
func pbDoubleFieldSize(v float64) int {
	if v == 0 {
		return 0
	}
	return 9
}

func pbAppendDouble(b []byte, tag byte, v float64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, tag)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// pbInt64FieldSize is the size of a proto3 int64 field with a one-byte tag:
// negative values take 10 bytes of varint.
func pbInt64FieldSize(v int64) int {
	if v == 0 {
		return 0
	}
	return 1 + pbVarintSize(uint64(v))
}

func pbAppendInt64(b []byte, tag byte, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, tag)
	return pbAppendVarint(b, uint64(v))
}
