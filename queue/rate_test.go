package queue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEWMARate(t *testing.T) {
	r := newEWMARate(0.5, 10*time.Second)
	r.add(1000)
	require.Equal(t, 100.0, r.tick(), "first interval sets the rate")
	r.add(3000)
	require.Equal(t, 200.0, r.tick(), "halfway to 300")
	require.Equal(t, 100.0, r.tick(), "halfway to 0")
}
