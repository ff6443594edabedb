package queue

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestSnappyStreamIsSnappyEncode: compressing block by block gives the
// bytes snappy.Encode gives for the whole input, at every size around the
// block boundaries, for compressible and random input, with the buffer
// reused from a larger body.
func TestSnappyStreamIsSnappyEncode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4*snappyBlockSize+100)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	text := bytes.Repeat([]byte("node_cpu_seconds_total{cpu=\"3\",mode=\"idle\"} "), len(random)/40)

	var c snappyStream
	for _, input := range [][]byte{random, text} {
		for _, n := range []int{
			0, 1, 16, 17, 100, snappyBlockSize - 1, snappyBlockSize, snappyBlockSize + 1,
			snappyBlockSize + 16, snappyBlockSize + 17, 3*snappyBlockSize + 5, 4 * snappyBlockSize,
		} {
			want := snappy.Encode(nil, input[:n])
			require.Equal(t, want, c.whole(input[:n]), "whole, %d bytes", n)

			// Streamed in uneven pieces, as a builder hands over whole
			// blocks of what it wrote so far.
			c.reset()
			pending := input[:0:0]
			for off := 0; off < n; off += 777 {
				pending = append(pending, input[off:min(off+777, n)]...)
				for len(pending) >= snappyBlockSize {
					c.block(pending[:snappyBlockSize])
					pending = pending[snappyBlockSize:]
				}
			}
			require.Equal(t, want, c.finish(pending), "streamed, %d bytes", n)
		}
	}
}

// TestRW1BuildIsSnappyOfEncoder: the shard's RW1 builder, which
// compresses while it builds, sends exactly snappy.Encode of what the
// rw1Encoder builds for the same items, for requests of one to several
// blocks.
func TestRW1BuildIsSnappyOfEncoder(t *testing.T) {
	for _, n := range []int{1, 100, 2000, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var enc rw1Encoder
			tab := newTestTable()
			items := make([]item, n)
			for i := range items {
				ls := labels.FromStrings("__name__", fmt.Sprintf("metric_%d", i%37), "instance", fmt.Sprintf("host-%d:9100", i/37), "job", "node")
				items[i] = item{series: internSeries(tab, ls), t: 1_750_000_000_000 + int64(i), v: float64(i) / 3, seq: uint64(i / 1000)}
				enc.AddSample(appendRW1Labels(nil, ls), items[i].t, items[i].v)
			}
			want := snappy.Encode(nil, enc.Bytes())

			b := rw1Builder{tab: tab}
			var sum batchSummary
			var c snappyStream
			got := b.build(items, &sum, &c)
			require.Equal(t, want, got)
			samples, _, _ := b.counts()
			require.Equal(t, n, samples)
			require.Equal(t, items[n-1].t, sum.newest)
			require.Len(t, sum.runs, (n+999)/1000)
		})
	}
}
