package receivers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// refusingProxy passes requests on to a receiver but answers the first n
// with 429 and Retry-After: 1, as a rate-limiting receiver does.
type refusingProxy struct {
	*httptest.Server
	refused atomic.Int64
}

func newRefusingProxy(target string, n int64) *refusingProxy {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	p := &refusingProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if p.refused.Add(1) <= n {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		p.refused.Add(-1)
		req.URL.Path = u.Path
		rp.ServeHTTP(w, req)
	}))
	return p
}

// restartWhen waits for cond (polled), then stops the receiver and starts
// it again on the same addresses with the same data; the processes that
// read from it (Thanos's query) stay and must follow.
func (in *instance) restartWhen(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("the receiver took no sample within a minute")
		}
		time.Sleep(10 * time.Millisecond) // polling the receiver, not synchronising
	}
	in.stopProc(0)
	if err := in.run(0); err != nil {
		return fmt.Errorf("restart %s: %w", in.r.Name, err)
	}
	return in.waitReady(ctx, time.Now(), time.Minute)
}

// takenFrom returns a function that sums the counter family name of a
// receiver's /metrics: how many samples it took.
func takenFrom(name string) func(ctx context.Context, base string) (float64, error) {
	return func(ctx context.Context, base string) (float64, error) {
		resp, err := get(ctx, base+"/metrics")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil && !strings.Contains(err.Error(), "second TYPE") {
			return 0, err
		}
		sum := 0.0
		for _, m := range families[name].GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetUntyped().GetValue()
		}
		return sum, nil
	}
}

// get sends a GET request with ctx.
func get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}
