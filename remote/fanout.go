package remote

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/walship/walship/queue"
)

// DefaultGroupLag is how long the members of a group wait for a member
// that has not taken a request the first of them took (Options.GroupLag):
// once it passes, the late member leaves the group. It bounds what a slow
// or failing endpoint costs the others: a request of theirs waits at most
// this long for it, once.
const DefaultGroupLag = 10 * time.Second

// maxOpenDeliveries bounds the fanout's memory of requests the queue
// retries (two per shard at most in a running queue).
const maxOpenDeliveries = 1024

// fanout is the Sender of a group's queue: it sends each request to every
// member at once and returns when all of them took it.
//
// While no member took a request, the group is one endpoint to its
// queue: answers all members share reach the queue, which retries, splits
// or falls back to RW1 for all of them, and a retry goes to the members
// that have not taken the request yet. Once one member took it, the fanout
// retries the others itself (the queue's backoff, the shard waiting) for
// at most the group's lag. A member leaves the group (the owner's leave gives it
// a queue of its own, from the group's saved position) when
//   - it refuses for good (a 4xx, 413, 415) a request another member took
//     or is still retrying;
//   - it has not taken a request the group's lag after another member took it;
//   - the queue stops sending (a flush ran out of time) while it has not
//     taken a request another member took: what the group then saves as
//     acknowledged is what the members that stay have.
//
// So every member gets every request in the same order, and what the
// group's queue counts is true of each member it counts for.
type fanout struct {
	leave   func(ep *endpoint, why string, err error) // the owner's: ep was let go
	backoff queue.Backoff
	lag     time.Duration // see DefaultGroupLag

	mu      sync.Mutex
	members []*endpoint
	open    map[*queue.Request]*delivery // requests the queue retries
}

var _ queue.Sender = (*fanout)(nil)

// delivery is how far one request got.
type delivery struct {
	took    []*endpoint // the members that took it
	first   time.Time   // when the first member took it
	written queue.Written
}

func newFanout(members []*endpoint, lag time.Duration, backoff queue.Backoff, leave func(*endpoint, string, error)) *fanout {
	return &fanout{leave: leave, backoff: backoff, lag: lag, members: slices.Clone(members), open: map[*queue.Request]*delivery{}}
}

// current returns the members still in the group.
func (f *fanout) current() []*endpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

// answer is one member's answer to one attempt.
type answer struct {
	ep      *endpoint
	written queue.Written
	err     error
	late    bool // cut off by the group's lag
	req     queue.Request
}

// Send implements queue.Sender.
func (f *fanout) Send(ctx context.Context, req *queue.Request, attempt int) (queue.Written, error) {
	f.mu.Lock()
	d := f.open[req]
	if attempt == 0 || d == nil {
		d = &delivery{}
		if len(f.open) >= maxOpenDeliveries {
			clear(f.open) // a forgotten request is sent to all again: duplicates, not loss
		}
		f.open[req] = d
	}
	var todo []*endpoint
	for _, ep := range f.members {
		if !slices.Contains(d.took, ep) {
			todo = append(todo, ep)
		}
	}
	f.mu.Unlock()

	for retries := 0; ; retries++ {
		var retry, refused, gone []answer
		for _, a := range f.ask(ctx, req, attempt+retries, todo, d) {
			switch {
			case a.err == nil:
				d.took = append(d.took, a.ep)
				d.written = minWritten(d.written, a.written, len(d.took) == 1)
			case a.late || ctx.Err() != nil || retryable(a.err) && f.overdue(d):
				a.late = true
				gone = append(gone, a)
			case retryable(a.err):
				retry = append(retry, a)
			default:
				refused = append(refused, a)
			}
		}
		if len(d.took) == 0 {
			// The group is one endpoint to the queue.
			switch {
			case ctx.Err() != nil:
				f.forget(req)
				return queue.Written{}, ctx.Err()
			case len(retry) > 0:
				f.let(refused) // those that retry stay
				return queue.Written{}, retry[0].err
			case len(refused) > 0:
				f.forget(req) // every member refused it
				return queue.Written{}, refused[0].err
			}
			return queue.Written{}, &queue.SendError{Err: errLate, Retryable: true} // no member: not reached
		}
		if last, ok := f.let(append(gone, refused...)); ok {
			// The last member cannot leave (those that took it left for
			// other requests meanwhile): its answer is the group's, and the
			// queue's retries go to it as to a lone endpoint.
			if !last.late {
				f.forget(req)
				return queue.Written{}, last.err
			}
			*d = delivery{} // those that took it are gone
			return queue.Written{}, &queue.SendError{Err: errLate, Retryable: true}
		}
		if len(retry) == 0 {
			f.forget(req)
			return d.written, nil
		}
		todo = todo[:0]
		for _, a := range retry {
			todo = append(todo, a.ep)
		}
		if !f.wait(ctx, d, retries, retry) {
			continue // overdue or stopping: the next round lets them go
		}
	}
}

// overdue reports whether the group's lag passed since a member took d's request.
func (f *fanout) overdue(d *delivery) bool {
	return !d.first.IsZero() && time.Since(d.first) > f.lag
}

// wait waits the backoff before the retry of members that failed a request
// another member took, and reports whether the retry is due; false when
// ctx ended or the group's lag will have passed first.
func (f *fanout) wait(ctx context.Context, d *delivery, retries int, failed []answer) bool {
	var after time.Duration
	for _, a := range failed {
		var se *queue.SendError
		if errors.As(a.err, &se) {
			after = max(after, se.RetryAfter)
		}
	}
	delay := f.backoff.Delay(retries+1, after)
	left := f.lag - time.Since(d.first)
	t := time.NewTimer(min(delay, max(left, 0)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return delay < left
	}
}

// errLate is a late member's answer when it is the last of its group.
var errLate = errors.New("remote: no answer within the group's lag")

// ask sends req to every member of todo at once and returns their
// answers. Once one member took it, the others have until the group's lag after
// d.first to answer; those that have not are cut off and marked late.
func (f *fanout) ask(ctx context.Context, req *queue.Request, attempt int, todo []*endpoint, d *delivery) []answer {
	if len(todo) == 0 {
		return nil
	}
	if f.overdue(d) {
		answers := make([]answer, len(todo))
		for i, ep := range todo {
			answers[i] = answer{ep: ep, late: true, err: errLate}
		}
		return answers
	}
	actx, cut := context.WithCancel(ctx)
	defer cut()
	answers := make([]answer, len(todo))
	done := make(chan int, len(todo))
	for i, ep := range todo {
		answers[i] = answer{ep: ep, req: *req} // each its own copy: BodyInUse
		go func() {
			a := &answers[i]
			a.written, a.err = ep.sender.Send(actx, &a.req, attempt)
			done <- i
		}()
	}
	var lag <-chan time.Time
	startLag := func() {
		if lag == nil && !d.first.IsZero() {
			t := time.NewTimer(f.lag - time.Since(d.first))
			context.AfterFunc(actx, func() { t.Stop() })
			lag = t.C
		}
	}
	startLag()
	cutOff := false
	for left := len(todo); left > 0; {
		select {
		case i := <-done:
			left--
			a := &answers[i]
			if a.err == nil && d.first.IsZero() {
				d.first = time.Now()
				startLag()
			}
			if cutOff && a.err != nil && ctx.Err() == nil {
				a.late = true
			}
		case <-lag:
			cutOff = true
			cut()
		}
	}
	for i := range answers {
		req.BodyInUse = req.BodyInUse || answers[i].req.BodyInUse
	}
	return answers
}

// let lets the members of gone leave the group, each once, but keeps the
// last member: it returns its answer and true when that was one of gone.
func (f *fanout) let(gone []answer) (answer, bool) {
	for _, a := range gone {
		f.mu.Lock()
		i := slices.Index(f.members, a.ep)
		last := i >= 0 && len(f.members) == 1
		if i >= 0 && !last {
			f.members = slices.Delete(f.members, i, i+1)
		}
		f.mu.Unlock()
		if last {
			return a, true
		}
		if i < 0 {
			continue
		}
		why := "refused a request another member took or is retrying"
		if a.late {
			why = "did not take within " + f.lag.String() + " (or before a stop) a request another member took"
		}
		f.leave(a.ep, why, a.err)
	}
	return answer{}, false
}

// remove takes ep out of the group (before its queue started).
func (f *fanout) remove(ep *endpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.members, ep); i >= 0 {
		f.members = slices.Delete(f.members, i, i+1)
	}
}

func (f *fanout) forget(req *queue.Request) {
	f.mu.Lock()
	delete(f.open, req)
	f.mu.Unlock()
}

// retryable reports whether a member's error is one its queue would retry.
func retryable(err error) bool {
	var se *queue.SendError
	return errors.As(err, &se) && se.Retryable
}

// minWritten is what the group counts as written: the least any member
// said it wrote (RW2's written-count headers).
func minWritten(acc, w queue.Written, first bool) queue.Written {
	switch {
	case first:
		return w
	case !w.Known:
		return acc
	case !acc.Known:
		return w
	}
	return queue.Written{Known: true, Samples: min(acc.Samples, w.Samples), Histograms: min(acc.Histograms, w.Histograms), Exemplars: min(acc.Exemplars, w.Exemplars)}
}
