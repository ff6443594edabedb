package main

import (
	"log/slog"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"

	"github.com/walship/walship/storage"
	"github.com/walship/walship/wal"
)

// agentCommand is `prometheus --agent` with walship's storage and remote
// write: it scrapes scrape_configs into a WAL under --storage.agent.path
// and ships that WAL to every remote_write endpoint.
type agentCommand struct {
	cmd    *kingpin.CmdClause
	common *commonFlags

	segmentSize       units.Base2Bytes
	compress          bool
	compression       string
	truncateFrequency model.Duration
	minWALTime        model.Duration
	maxWALTime        model.Duration
	maxWALBytes       units.Base2Bytes
	agentMode         bool
}

func newAgentCommand(app *kingpin.Application, common *commonFlags) *agentCommand {
	c := &agentCommand{common: common}
	c.cmd = app.Command("agent", "Scrape the configured targets into a WAL under --storage.agent.path and ship it to the remote_write endpoints (the default command).").Default()
	// Storage flags are the application's, as in Prometheus, so that they
	// work without naming the command.
	app.Flag("agent", "Accepted for compatibility with `prometheus --agent`; walship always runs in agent mode.").Hidden().BoolVar(&c.agentMode)
	app.Flag("storage.agent.wal-segment-size", "Size at which to split WAL segment files. Example: 100MB").
		Hidden().PlaceHolder("<bytes>").SetValue(named("storage.agent.wal-segment-size", (*bytesValue)(&c.segmentSize)))
	app.Flag("storage.agent.wal-compression", "Compress the agent WAL.").Default("true").BoolVar(&c.compress)
	app.Flag("storage.agent.wal-compression-type", "Compression algorithm for the agent WAL, used when --storage.agent.wal-compression is true.").
		Hidden().Default("snappy").EnumVar(&c.compression, "snappy", "zstd")
	app.Flag("storage.agent.wal-truncate-frequency", "The frequency at which to truncate the WAL and remove old data.").
		Hidden().Default("2h").SetValue(named("storage.agent.wal-truncate-frequency", &c.truncateFrequency))
	app.Flag("storage.agent.retention.min-time", "Minimum age samples may be before being considered for deletion when the WAL is truncated.").
		Default("5m").SetValue(named("storage.agent.retention.min-time", &c.minWALTime))
	app.Flag("storage.agent.retention.max-time", "Maximum age samples may be before being forcibly deleted when the WAL is truncated.").
		Default("4h").SetValue(named("storage.agent.retention.max-time", &c.maxWALTime))
	app.Flag("storage.agent.retention.size", "Disk budget of the agent WAL (e.g. 10GB). Past it the oldest segments are deleted even if an endpoint has not sent them; the loss is counted and logged. 0 means unlimited.").
		Default("0").SetValue(named("storage.agent.retention.size", (*bytesValue)(&c.maxWALBytes)))
	return c
}

func (c *agentCommand) storageOptions(logger *slog.Logger) (storage.Options, error) {
	o := storage.Options{
		Logger:            logger.With("component", "storage"),
		SegmentSize:       int(c.segmentSize),
		TruncateFrequency: time.Duration(c.truncateFrequency),
		MinWALTime:        time.Duration(c.minWALTime),
		MaxWALTime:        time.Duration(c.maxWALTime),
		MaxWALBytes:       int64(c.maxWALBytes),
		Compression:       wal.None,
	}
	if c.compress {
		comp, err := wal.ParseCompression(c.compression)
		if err != nil {
			return o, err
		}
		o.Compression = comp
	}
	return o, nil
}

// bytesValue is a byte size flag ("100MB", "1GiB").
type bytesValue units.Base2Bytes

func (b *bytesValue) Set(s string) error {
	v, err := units.ParseBase2Bytes(s)
	if err != nil {
		return err
	}
	*b = bytesValue(v)
	return nil
}

func (b *bytesValue) String() string { return units.Base2Bytes(*b).String() }
