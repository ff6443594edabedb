package testkit

import (
	"net/http"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Request is what a Respond function is shown of one request: its body is
// read and decoded, and it is not answered yet.
type Request struct {
	N      int           // arrival number, from 1
	HTTP   *http.Request // as received (its body is read already)
	RW2    bool          // the Content-Type names io.prometheus.write.v2.Request
	Series []Series      // the decoded body
	Err    error         // why the body does not decode; Series is nil then
}

// Series is one series of a request, decoded.
type Series struct {
	Labels     labels.Labels
	Samples    []prompb.Sample
	Histograms int
	Exemplars  int
	Type       writev2.Metadata_MetricType // the RW2 metadata type; unspecified over RW1
}

// Reply is how the receiver answers one request. The zero Reply accepts
// it: the receiver records what it holds and answers 204 (over RW2 with
// the X-Prometheus-Remote-Write-*-Written counts), or 400 to a body that
// does not decode, which it reports as a test error.
//
// A reply that waits (Delay, Wait) ends early when the client gives up:
// the request is then abandoned, neither answered nor recorded. Every wait
// ends when the test does.
type Reply struct {
	Status int             // answer this status instead, and record nothing
	Header http.Header     // set on the answer, either way; wins over the written counts
	Delay  time.Duration   // wait this long first: an endpoint's latency
	Wait   <-chan struct{} // wait until this is closed first
	HangUp bool            // close the connection without an answer
}

// Refuse returns a Respond function that answers status to every request.
func Refuse(status int) func(*Request) Reply {
	return func(*Request) Reply { return Reply{Status: status} }
}

// RW1Only answers Remote-Write 2.0 requests 415 and accepts the others, as
// a receiver that takes only Remote-Write 1.0 does: a Respond function.
func RW1Only(req *Request) Reply {
	if req.RW2 {
		return Reply{Status: http.StatusUnsupportedMediaType}
	}
	return Reply{}
}
