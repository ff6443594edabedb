package queue_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/internal/testkit"
	"github.com/walship/walship/queue"
	"github.com/walship/walship/remote"
	"github.com/walship/walship/wal/record"
)

// bodyWatch is the queue's Sender in TestQueueLeavesBodiesTheTransportReads:
// it sends through a Client and notes, for each send, the memory of the
// body and whether the Client said the transport may still read it.
type bodyWatch struct {
	client *remote.Client
	mu     sync.Mutex
	sends  []watchedBody
}

type watchedBody struct {
	body       []byte  // kept, so that its memory is not reused for another
	start, end uintptr // the body's memory
	inUse      bool
}

func (w *bodyWatch) Send(ctx context.Context, req *queue.Request, attempt int) (queue.Written, error) {
	written, err := w.client.Send(ctx, req, attempt)
	start := uintptr(unsafe.Pointer(unsafe.SliceData(req.Body)))
	w.mu.Lock()
	w.sends = append(w.sends, watchedBody{body: req.Body, start: start, end: start + uintptr(len(req.Body)), inUse: req.BodyInUse})
	w.mu.Unlock()
	return written, err
}

func (w *bodyWatch) watched() []watchedBody {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]watchedBody(nil), w.sends...)
}

// TestQueueLeavesBodiesTheTransportReads runs the queue through a real
// Client against an endpoint that refuses the first two requests at once,
// without reading their bodies (megabytes, more than the connection's
// buffers hold): net/http is still writing them when the answer comes.
// Those sends say the body is in use, and no later body is built in their
// memory; a request written whole and answered lets a later one reuse its
// memory (a shard builds into two bodies in turn, so among three such
// requests one reuses another's). The requests the endpoint reads decode
// whole. Under -race this also shows the transport and the shard never
// touch one body at once.
func TestQueueLeavesBodiesTheTransportReads(t *testing.T) {
	const batch = 40_000
	recv := testkit.NewReceiver(t) // reads whole every request it gets
	var answered atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answered.Add(1) <= 2 {
			http.Error(w, "refused before reading", http.StatusBadRequest)
			return
		}
		recv.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	// A small socket send buffer, so that a body of megabytes cannot sit
	// in the kernel while nobody reads it.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetWriteBuffer(4096)
		}
		return c, err
	}
	cfg := config.DefaultRemoteWriteConfig
	u, err := (&commoncfg.URL{}).Parse(srv.URL)
	require.NoError(t, err)
	cfg.URL = &commoncfg.URL{URL: u}
	client, err := remote.NewClient("bodies", &cfg, remote.ClientOptions{
		HTTPClientOptions: []commoncfg.HTTPClientOption{commoncfg.WithDialContextFunc(dial)},
	})
	require.NoError(t, err)
	t.Cleanup(client.Close)
	watch := &bodyWatch{client: client}

	qc := config.DefaultQueueConfig
	qc.MaxSamplesPerSend, qc.Capacity = batch, batch
	qc.MinShards, qc.MaxShards = 1, 1
	qc.BatchSendDeadline = model.Duration(10 * time.Millisecond)
	q, err := queue.New(queue.Options{Name: "bodies", URL: srv.URL, Config: qc, Sender: watch, Metrics: queue.NewMetrics(nil)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	// Labels that compress poorly (a hash per series), so that a batch is
	// megabytes on the wire.
	series := make([]record.RefSeries, batch)
	for i := range series {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		series[i] = record.RefSeries{Ref: record.Ref(i + 1), Labels: labels.FromStrings("__name__", "bodies", "id", fmt.Sprintf("%x", sum))}
	}
	q.StoreSeries(series, 0)
	const scrapes = 5
	for sc := range scrapes {
		samples := make([]record.RefSample, batch)
		for i := range samples {
			samples[i] = record.RefSample{Ref: record.Ref(i + 1), T: int64(sc) * 1000, V: float64(i)}
		}
		at := record.Span{Start: record.Position{Offset: int64(sc)}, End: record.Position{Offset: int64(sc) + 1}}
		appendAll(q, samples, at)
	}
	require.Eventually(t, func() bool { _, pending := q.LowestPending(); return !pending }, 30*time.Second, 5*time.Millisecond)

	sends := watch.watched()
	require.Len(t, sends, scrapes)
	require.Greater(t, sends[0].end-sends[0].start, uintptr(4<<20)/4, "a body too small to block the transport")
	overlap := func(a, b watchedBody) bool { return a.start < b.end && b.start < a.end }
	for i, s := range sends[:2] {
		require.True(t, s.inUse, "send %d was answered before its body was written", i)
		for j := i + 1; j < len(sends); j++ {
			require.False(t, overlap(s, sends[j]), "send %d's body was built in the memory of send %d, which the transport may still read", j, i)
		}
	}
	reused := false
	for i := 2; i < len(sends); i++ {
		require.False(t, sends[i].inUse, "send %d: a request written whole and answered", i)
		for j := 2; j < i; j++ {
			reused = reused || overlap(sends[j], sends[i])
		}
	}
	require.True(t, reused, "a later body reuses the memory of one the transport was done with")
	require.Equal(t, (scrapes-2)*batch, recv.Accepted().Samples, "the bodies read arrived whole") // a sample a series
}
