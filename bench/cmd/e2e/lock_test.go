package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A second run on the same work directory is refused while the first
// holds it; another directory is not.
func TestLockWork(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, lockWork(dir))
	require.ErrorContains(t, lockWork(dir), "in use by another e2e run")
	require.NoError(t, lockWork(t.TempDir()))
}
