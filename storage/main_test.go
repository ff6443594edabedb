package storage

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any of them leaves a goroutine
// behind (a Run not stopped, an upstream watcher not stopped).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
