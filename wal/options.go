package wal

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Writer. The zero value writes uncompressed 128 MiB
// segments to the real filesystem.
type Options struct {
	// FS is the filesystem; nil means OS.
	FS FS
	// SegmentSize is the size at which the Writer starts a new segment. It
	// must be a multiple of PageSize; 0 means DefaultSegmentSize.
	SegmentSize int
	// Compression is applied to each record that it makes smaller.
	Compression Compression
	// Logger receives the Writer's rare messages; nil discards them.
	Logger *slog.Logger
	// Registerer receives the prometheus_tsdb_wal_* metrics; nil skips
	// registration.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() (Options, error) {
	if o.FS == nil {
		o.FS = OS
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize <= 0 || o.SegmentSize%PageSize != 0 {
		return o, fmt.Errorf("wal: invalid segment size %d: must be a positive multiple of %d", o.SegmentSize, PageSize)
	}
	c, err := ParseCompression(string(o.Compression))
	if err != nil {
		return o, err
	}
	o.Compression = c
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
