package record

import (
	"errors"
	"fmt"
)

// ErrShortRecord is returned when a record ends before a field it must hold:
// a cut-off varint, fixed-width integer or string, a count that promises more
// items than there are bytes left, or an empty record with no type byte.
// It usually means the record was truncated or is corrupt.
var ErrShortRecord = errors.New("record: truncated record")

// ErrTrailingBytes is returned when bytes are left over after the last entry
// a record can hold, for example a few stray bytes after the last sample.
var ErrTrailingBytes = errors.New("record: unexpected trailing bytes")

// ErrBadVarint is returned when a varint runs past the ten bytes a 64-bit
// value can take or overflows 64 bits.
var ErrBadVarint = errors.New("record: malformed varint")

// ErrWrongType is returned when a decode method is given a record of a
// known type it does not decode, such as a Series record passed to
// Decoder.Samples. The wrapped message names both types.
var ErrWrongType = errors.New("record: wrong record type")

// UnknownTypeError is returned by the decode methods when the record's first
// byte is not a type this package knows. Such records may have been written
// by a newer Prometheus; callers that read a WAL usually count and skip
// them rather than stop. Use errors.As or IsUnknownType to detect it.
type UnknownTypeError struct {
	// Type is the record's first byte.
	Type byte
}

// Error implements error.
func (e UnknownTypeError) Error() string {
	return fmt.Sprintf("record: unknown record type %d", e.Type)
}

// IsUnknownType reports whether err is, or wraps, an UnknownTypeError.
func IsUnknownType(err error) bool {
	var u UnknownTypeError
	return errors.As(err, &u)
}

// checkType reads the type byte of rec and returns it if it is one of want.
// Otherwise it returns the error a decode method should report.
func checkType(rec []byte, want ...Type) (Type, error) {
	if len(rec) == 0 {
		return Unknown, fmt.Errorf("%w: empty record has no type byte", ErrShortRecord)
	}
	t := Type(rec[0])
	for _, w := range want {
		if t == w {
			return t, nil
		}
	}
	if !t.known() {
		return Unknown, UnknownTypeError{Type: rec[0]}
	}
	return t, fmt.Errorf("%w: got %v (%d), want %v", ErrWrongType, t, uint8(t), typeList(want))
}

// typeList formats a list of types for an error message.
func typeList(ts []Type) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += " or "
		}
		s += fmt.Sprintf("%v (%d)", t, uint8(t))
	}
	return s
}

// decodeError wraps the sticky error of a decbuf with where it happened.
func decodeError(t Type, d *decbuf) error {
	return fmt.Errorf("%w (%v record, at byte %d)", d.err, t, d.errAt)
}

// trailingError reports bytes left after the last entry of a record.
func trailingError(t Type, n int) error {
	return fmt.Errorf("%w: %d bytes left after the last entry of a %v record", ErrTrailingBytes, n, t)
}
