package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// Metric returns the value of the metric family name in g: the sum, over
// its series whose labels include every name and value of labelPairs (all
// its series when there are none), of a counter's or gauge's value or a
// histogram's or summary's sample count. It is 0 when no series matches.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labelPairs ...string) float64 {
	t.Helper()
	require.Zero(t, len(labelPairs)%2, "label names and values in pairs: %q", labelPairs)
	mfs, err := g.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labelPairs) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue() +
					float64(m.GetHistogram().GetSampleCount()) + float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	return sum
}

// hasLabels says whether m has every name and value of pairs.
func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i < len(pairs); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			found = found || lp.GetName() == pairs[i] && lp.GetValue() == pairs[i+1]
		}
		if !found {
			return false
		}
	}
	return true
}
