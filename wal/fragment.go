package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/walship/walship/wal/record"
)

// Sizes of the on-disk format.
const (
	// PageSize is the size of a page: fragments never cross a page boundary.
	PageSize = 32 * 1024
	// HeaderSize is the size of a fragment header.
	HeaderSize = 7
	// MaxFragmentPayload is the largest payload a single fragment carries.
	MaxFragmentPayload = PageSize - HeaderSize
	// DefaultSegmentSize is the segment size Prometheus uses.
	DefaultSegmentSize = 128 * 1024 * 1024
)

// Fragment types: the low three bits of a header byte.
const (
	fragPageTerm byte = 0
	fragFull     byte = 1
	fragFirst    byte = 2
	fragMiddle   byte = 3
	fragLast     byte = 4

	fragTypeMask byte = 0x07
	snappyFlag   byte = 0x08
	zstdFlag     byte = 0x10
	unusedBits   byte = 0xe0
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxEmptyReads bounds how often in a row a source may return neither
// data nor an error before a scanner gives up with ErrNoProgress.
const maxEmptyReads = 100

// scanBufferSize is how much a scanner reads from its source at once.
const scanBufferSize = 16 * PageSize

// scanner turns the bytes of one segment into records. It is the single
// parser behind both Reader and LiveReader: in live mode a short read means
// "wait for the writer" and nothing incomplete is consumed; otherwise the
// end of the source ends the segment, and a record or fragment cut short by
// it is torn.
type scanner struct {
	src  io.Reader
	live bool

	buf    []byte // data read from src; unconsumed bytes are buf[r:w]
	r, w   int
	srcEOF bool  // the source has reported io.EOF (reset in live mode)
	off    int64 // segment offset of buf[r]

	inRecord bool        // a first fragment was read, its last not yet
	recStart int64       // offset of the first fragment of the record being read
	comp     Compression // compression of the record being read
	frag     []byte      // payload of a record's fragments so far
	dec      []byte      // decompression buffer
	rec      []byte      // the record last returned

	lastStart, lastEnd int64 // where the record last returned starts and ends
	spans              int   // fragments seen crossing a page boundary

	// After damage (resync): the bytes before skipTo are passed over, and
	// while resyncing, fragments that end a record the damage began too.
	skipTo    int64
	resyncing bool

	// only, when set, says which record types to return: records of
	// other types are checked and passed over, without decompressing them
	// where their first byte (the type) can be read in the compressed form.
	only func(record.Type) bool
}

func newScanner(src io.Reader, live bool, off int64) *scanner {
	return &scanner{src: src, live: live, buf: make([]byte, scanBufferSize), off: off, lastEnd: off, lastStart: off}
}

// reset makes s read src from offset off, keeping its buffers.
func (s *scanner) reset(src io.Reader, off int64) {
	s.src, s.r, s.w, s.srcEOF, s.off = src, 0, 0, false, off
	s.inRecord, s.frag, s.rec = false, s.frag[:0], nil
	s.lastStart, s.lastEnd = off, off
	s.skipTo, s.resyncing = 0, false
}

// fill makes at least n unconsumed bytes available and reports whether it could.
func (s *scanner) fill(n int) (bool, error) {
	if s.w-s.r >= n {
		return true, nil
	}
	if s.r > 0 && len(s.buf)-s.r < n {
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	if s.live {
		s.srcEOF = false
	}
	empty := 0
	for s.w-s.r < n && !s.srcEOF {
		k, err := s.src.Read(s.buf[s.w:])
		s.w += k
		switch {
		case err == io.EOF:
			s.srcEOF = true
		case err != nil:
			return false, err
		case k == 0:
			if empty++; empty >= maxEmptyReads {
				return false, ErrNoProgress
			}
		default:
			empty = 0
		}
	}
	return s.w-s.r >= n, nil
}

func (s *scanner) consume(n int) {
	s.r += n
	s.off += int64(n)
}

// next returns the next record. It returns io.EOF at the end of the data:
// for a live scanner that means "try again later", for a closed one the
// clean end of the segment. Any other error is corruption or I/O; the
// offset of the problem is s.lastEnd (the end of the last good record).
func (s *scanner) next() ([]byte, error) {
	for {
		rec, err := s.scan()
		if err == nil || err == io.EOF || !s.resyncing || !isFormatError(err) {
			return rec, err
		}
		// More damage before the next intact record: try the next page.
		s.skipTo = nextPage(s.off)
	}
}

// resync drops the record being read after next returned the format
// error cause, and makes next go on with the next intact record. Where
// the damage ends, and so where the next fragment header is, is unknown:
// reading goes on at the next page, which a writer begins with a fragment
// header, and takes the first record that begins after it (fragments
// ending the record the damage was in are passed over; a page damaged too
// is passed over whole). Fragments out of order mean a damaged header
// byte, which no checksum covers: the fragments after it are not taken
// for a record's start either. Only after a record that does not
// decompress are the boundaries known (checksums held): reading goes on
// with the next record.
func (s *scanner) resync(cause error) {
	s.inRecord, s.frag = false, s.frag[:0]
	s.resyncing = true
	if !errors.Is(cause, ErrDecompress) {
		s.skipTo = nextPage(s.off)
	}
}

// nextPage returns the offset of the page after the one off is in.
func nextPage(off int64) int64 { return (off/PageSize + 1) * PageSize }

// scan is next without resynchronisation: it returns the first error.
func (s *scanner) scan() ([]byte, error) {
	for {
		if s.off < s.skipTo {
			ok, err := s.fill(1)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, io.EOF
			}
			s.consume(int(min(int64(s.w-s.r), s.skipTo-s.off)))
			continue
		}
		ok, err := s.fill(1)
		if err != nil {
			return nil, err
		}
		if !ok {
			if s.inRecord && !s.live {
				return nil, fmt.Errorf("%w: record started at %d has no last fragment", ErrTornRecord, s.recStart)
			}
			return nil, io.EOF
		}
		hdr := s.buf[s.r]
		if hdr == fragPageTerm {
			if err := s.skipPadding(); err != nil {
				return nil, err
			}
			continue
		}
		ok, err = s.fill(HeaderSize)
		if err != nil {
			return nil, err
		}
		if !ok {
			if s.live {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("%w: fragment header cut short", ErrTornRecord)
		}
		h := s.buf[s.r : s.r+HeaderSize]
		length := int(binary.BigEndian.Uint16(h[1:]))
		crc := binary.BigEndian.Uint32(h[3:])
		if length > MaxFragmentPayload {
			return nil, fmt.Errorf("%w: %d bytes", ErrFragmentLength, length)
		}
		typ := hdr & fragTypeMask
		// The header byte is not covered by the CRC: refuse every value a
		// writer cannot produce, so that a damaged one is not taken for a
		// different fragment type. (Type 0 here has a flag bit set: a page
		// terminator is a whole zero byte.)
		if typ == fragPageTerm || typ > fragLast || hdr&unusedBits != 0 || hdr&(snappyFlag|zstdFlag) == snappyFlag|zstdFlag {
			return nil, fmt.Errorf("%w: header byte %#x", ErrFragmentType, hdr)
		}
		ok, err = s.fill(HeaderSize + length)
		if err != nil {
			return nil, err
		}
		if !ok {
			if s.live {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("%w: fragment of %d bytes cut short", ErrTornRecord, length)
		}
		payload := s.buf[s.r+HeaderSize : s.r+HeaderSize+length]
		if got := crc32.Checksum(payload, castagnoli); got != crc {
			return nil, fmt.Errorf("%w: computed %08x, header says %08x", ErrChecksum, got, crc)
		}
		if s.inRecord != (typ == fragMiddle || typ == fragLast) {
			if s.resyncing && !s.inRecord {
				s.consume(HeaderSize + length) // the end of a record the damage began
				continue
			}
			return nil, orderError(typ, s.inRecord)
		}
		s.resyncing = false
		if int(s.off%PageSize)+HeaderSize+length > PageSize {
			s.spans++ // tolerated, as upstream's readers do
		}
		start := s.off
		comp := compressionOf(hdr)
		if s.inRecord && comp != s.comp {
			return nil, fmt.Errorf("%w: header byte %#x changes the compression of the record", ErrFragmentType, hdr)
		}
		s.consume(HeaderSize + length)

		switch typ {
		case fragFull:
			s.lastStart = start
			if rec, ok, err := s.finish(comp, payload); ok || err != nil {
				return rec, err
			}
		case fragFirst:
			s.inRecord, s.recStart, s.comp = true, start, comp
			s.frag = append(s.frag[:0], payload...)
		case fragMiddle:
			s.frag = append(s.frag, payload...)
		case fragLast:
			s.inRecord = false
			s.frag = append(s.frag, payload...)
			s.lastStart = s.recStart
			if rec, ok, err := s.finish(s.comp, s.frag); ok || err != nil {
				return rec, err
			}
		}
	}
}

// finish decompresses a complete record and marks it as read. ok is false
// for a record s.only passes over (it is marked as read too).
func (s *scanner) finish(comp Compression, payload []byte) (rec []byte, ok bool, err error) {
	if s.only != nil {
		if t, known := firstByte(comp, payload); known && !s.only(record.Type(t)) {
			s.lastEnd = s.off
			return nil, false, nil
		}
	}
	rec = payload
	if comp != None {
		if rec, err = decompress(comp, s.dec, payload); err != nil {
			return nil, false, fmt.Errorf("%w (%s): %v", ErrDecompress, comp, err)
		}
		s.dec = rec
	}
	s.lastEnd = s.off
	if s.only != nil && len(rec) > 0 && !s.only(record.Type(rec[0])) {
		return nil, false, nil // a type that had to be decompressed to be known
	}
	s.rec = rec
	return rec, true, nil
}

// firstByte returns the first byte of a record from its payload as
// written, without decompressing it: for no compression, and for snappy,
// whose block starts with the decoded length and then a literal (the
// first element cannot copy). ok is false when it cannot tell.
func firstByte(comp Compression, payload []byte) (b byte, ok bool) {
	switch comp {
	case None:
		if len(payload) > 0 {
			return payload[0], true
		}
	case Snappy:
		_, k := binary.Uvarint(payload)
		if k <= 0 || k >= len(payload) || payload[k]&3 != 0 {
			return 0, false
		}
		tag := payload[k]
		at := k + 1
		if n := int(tag >> 2); n >= 60 {
			at += n - 59 // the literal's length follows the tag in 1 to 4 bytes
		}
		if at < len(payload) {
			return payload[at], true
		}
	}
	return 0, false
}

// skipPadding consumes a page terminator and the zeros up to the page end.
func (s *scanner) skipPadding() error {
	if s.off%PageSize == 0 {
		// A writer pads the rest of a page it wrote records into and
		// never writes a page of nothing: zeros where a page begins are
		// damage (a zeroed page, or a crash's unwritten tail), and what
		// they held is lost. Taken for padding, they would be skipped
		// without a word.
		return fmt.Errorf("%w: the page at %d begins with zeros, as no writer begins a page", ErrPadding, s.off)
	}
	k := PageSize - int(s.off%PageSize)
	ok, err := s.fill(k)
	if err != nil {
		return err
	}
	avail := min(k, s.w-s.r)
	if !ok && s.live {
		// The writer pads a page in one write; until all of it is there,
		// check what is and wait.
		for _, c := range s.buf[s.r : s.r+avail] {
			if c != 0 {
				return fmt.Errorf("%w", ErrPadding)
			}
		}
		return io.EOF
	}
	for i, c := range s.buf[s.r : s.r+avail] {
		if c != 0 {
			return fmt.Errorf("%w: at page offset %d", ErrPadding, int(s.off%PageSize)+i)
		}
	}
	// A closed segment may end before its last page does: the rest counts as zeros.
	s.consume(avail)
	if !s.inRecord && !s.resyncing {
		s.lastEnd = s.off
	}
	return nil
}

func compressionOf(hdr byte) Compression {
	switch {
	case hdr&snappyFlag != 0:
		return Snappy
	case hdr&zstdFlag != 0:
		return Zstd
	}
	return None
}

func fragName(t byte) string {
	switch t {
	case fragFull:
		return "full"
	case fragFirst:
		return "first"
	case fragMiddle:
		return "middle"
	case fragLast:
		return "last"
	}
	return "page terminator"
}

func orderError(typ byte, inRecord bool) error {
	if inRecord {
		return fmt.Errorf("%w: %s fragment inside a record", ErrFragmentOrder, fragName(typ))
	}
	return fmt.Errorf("%w: %s fragment without a first", ErrFragmentOrder, fragName(typ))
}
