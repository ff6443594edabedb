package wal_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any of them leaves a goroutine
// behind (a Writer not closed, a tailing reader not stopped).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
