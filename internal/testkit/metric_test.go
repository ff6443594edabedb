package testkit_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
)

func TestMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused_total"}, []string{"remote_name", "reason"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds"})
	reg.MustRegister(refused, latency)
	refused.WithLabelValues("a", "400").Add(2)
	refused.WithLabelValues("a", "413").Add(3)
	refused.WithLabelValues("b", "400").Add(5)
	latency.Observe(1)

	require.Equal(t, 10.0, testkit.Metric(t, reg, "refused_total"))
	require.Equal(t, 7.0, testkit.Metric(t, reg, "refused_total", "reason", "400"))
	require.Equal(t, 2.0, testkit.Metric(t, reg, "refused_total", "reason", "400", "remote_name", "a"))
	require.Zero(t, testkit.Metric(t, reg, "refused_total", "reason", "500"))
	require.Zero(t, testkit.Metric(t, reg, "missing_total"))
	require.Equal(t, 1.0, testkit.Metric(t, reg, "latency_seconds"), "a histogram's count")
}
