package wal

import (
	"fmt"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
)

// Compression says how the Writer compresses records. Readers handle every
// kind whatever the Writer used: the choice is stored per record in the
// fragment headers.
type Compression string

// The compressions Prometheus knows, named as its --storage.*.wal-compression-type flag names them.
const (
	None   Compression = "none"
	Snappy Compression = "snappy"
	Zstd   Compression = "zstd"
)

// ParseCompression accepts "", "none", "snappy" and "zstd".
func ParseCompression(s string) (Compression, error) {
	switch Compression(s) {
	case "", None:
		return None, nil
	case Snappy, Zstd:
		return Compression(s), nil
	}
	return "", fmt.Errorf("wal: unknown compression %q (want none, snappy or zstd)", s)
}

// zstd coders are safe for concurrent EncodeAll/DecodeAll; one each serves
// the process, made with the library's defaults as upstream makes them so
// the bytes written are the same.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

func zstdCoders() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil)
		if zstdErr == nil {
			zstdDec, zstdErr = zstd.NewReader(nil)
		}
	})
	return zstdEnc, zstdDec, zstdErr
}

// compress appends the compressed form of src to dst[:0].
func compress(c Compression, dst, src []byte) ([]byte, error) {
	switch c {
	case Snappy:
		n := snappy.MaxEncodedLen(len(src))
		if n < 0 {
			return nil, fmt.Errorf("wal: record of %d bytes too large for snappy", len(src))
		}
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		return snappy.Encode(dst[:n], src), nil
	case Zstd:
		enc, _, err := zstdCoders()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(src, dst[:0]), nil
	}
	return src, nil
}

// decompress returns the decompressed form of src, using dst's storage
// when it is large enough.
func decompress(c Compression, dst, src []byte) ([]byte, error) {
	switch c {
	case Snappy:
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		// No snappy element decodes to more than 64 bytes from 3 (a copy
		// with a 2-byte offset): refuse a claimed length beyond that
		// before allocating it.
		if uint64(n) > 22*uint64(len(src)) {
			return nil, snappy.ErrCorrupt
		}
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		return snappy.Decode(dst[:n], src)
	case Zstd:
		_, dec, err := zstdCoders()
		if err != nil {
			return nil, err
		}
		return dec.DecodeAll(src, dst[:0])
	}
	return src, nil
}
