package testkit

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// RequireLabels fails t unless got holds the same labels as want. With
// Prometheus's dedupelabels build tag (walship-agent's build) equal label
// sets built from different symbol tables differ in their bytes, so
// require.Equal cannot compare them.
func RequireLabels(t require.TestingT, want, got labels.Labels, msgAndArgs ...any) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	if !labels.Equal(want, got) {
		require.Fail(t, fmt.Sprintf("labels differ:\nwant: %s\n got: %s", want, got), msgAndArgs...)
	}
}

// RequireLabelSets is RequireLabels for lists of label sets.
func RequireLabelSets(t require.TestingT, want, got []labels.Labels, msgAndArgs ...any) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	require.Equal(t, len(want), len(got), msgAndArgs...)
	for i := range want {
		RequireLabels(t, want[i], got[i], append([]any{"label set %d"}, i)...)
	}
}
