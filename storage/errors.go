package storage

import "errors"

// Errors of the appender besides upstream's storage.Err* sentinels
// (ErrOutOfOrderSample, ErrOutOfOrderST, ErrSTNewerThanSample, ...), which
// it returns where upstream's agent does.
var (
	// ErrInvalidSample means a sample's labels are empty or repeat a name.
	ErrInvalidSample = errors.New("storage: invalid sample")
	// ErrInvalidExemplar means an exemplar's labels repeat a name.
	ErrInvalidExemplar = errors.New("storage: invalid exemplar")
	// ErrUnknownSeries means an exemplar or metadata names a series the DB
	// does not hold.
	ErrUnknownSeries = errors.New("storage: unknown series")
	// ErrClosed is returned by a DB after Close.
	ErrClosed = errors.New("storage: closed")
)
