package deps

import (
	_ "github.com/golang/snappy"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/prometheus/prometheus/tsdb/wlog"
	_ "github.com/prometheus/prometheus/tsdb/record"
	_ "github.com/prometheus/prometheus/model/labels"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.uber.org/goleak"
	_ "github.com/stretchr/testify/require"
)
