package queue

import (
	"context"
	"strconv"
)

// This file is how a shard delivers one batch: as one request sent until
// the endpoint takes it (the send policy's retries, the same bytes each
// time), or in smaller requests after a 413, or again as RW1 when the
// endpoint turned out to lack RW2, and how each request's end is
// accounted for. A batch's request is built again only when what it holds
// changed (items grew too old, a 413 split it) or the protocol did.

// deliver sends f's batch until each of its items ended (accepted,
// refused for good or dropped) or ctx ends: as f's request when it is
// built (first is how its first attempt went, when it was made), or else in
// requests of the queue's request size, each built in turn into f.
//
// A request refused as too large (413) is not retried as it is: the queue
// lowers its request size (sizeLimit) and the rest of the batch goes in
// requests of that size, at most maxHalvings times per batch. Once that
// did not help, or when the refused request was too small for its size to
// be the reason (splittable), the rest of the batch is dropped, counted
// with reason too_large: an endpoint that refuses everything gets at most
// maxHalvings+1 requests per batch, and one once the learned size is small.
//
// A request the endpoint refuses for want of RW2 switches the queue to RW1
// for good, and the same items go again as RW1.
func (s *shard) deliver(ctx context.Context, f *flight, first *attemptResult) {
	rest, halvings := f.batch, 0
	// An attempt made already is accounted for even when ctx ended since:
	// a request the endpoint took is not sent again.
	for len(rest) > 0 && (ctx.Err() == nil || first != nil) {
		part := rest
		if !f.built {
			part = rest[:min(len(rest), s.policy.sizes.current())]
			s.encode(f, part)
		}
		n := len(part)
		outcome, kept, err := s.complete(ctx, f, part, first)
		first, f.built = nil, false // what follows is built anew
		switch outcome {
		case aborted:
			return // its items stay pending
		case unsupported:
			// The endpoint speaks only RW1: the queue switches for good,
			// and these items go again as RW1 (whose requests never end
			// so: this happens once per queue).
			s.policy.proto.fallBackToRW1()
			rest = keep(rest, n, kept)
			continue
		case tooLarge:
		default:
			rest = rest[n:]
			continue
		}
		rest = keep(rest, n, kept)
		k := len(kept)
		split := splittable(kept, &f.req) // else its size is not the reason
		limit, lowered := s.policy.sizes.current(), false
		if split {
			limit, lowered = s.policy.sizes.refused(k)
		}
		if !split || halvings == maxHalvings {
			s.policy.metrics.refused.WithLabelValues(strconv.Itoa(statusTooLarge)).Inc()
			s.policy.logTooLarge(&f.req, limit, lowered, true, err)
			s.ledger.dropTooLarge(rest)
			return
		}
		halvings++
		s.policy.logTooLarge(&f.req, limit, lowered, false, err)
	}
}

// keep returns rest with its first n items (a request's, sent from the
// front of rest) replaced by kept, the front of them still to send (the
// send may have dropped items grown too old).
func keep(rest []item, n int, kept []item) []item {
	k := len(kept)
	old := rest
	rest = rest[n-k:]
	copy(rest, kept)
	clear(old[:n-k])
	return rest
}

// complete sends f's request, built from batch, until the endpoint
// accepts it, refuses it for good, or ctx ends, and accounts for the
// batch (ledger.finish): the request is encoded once and retried as the
// same bytes. first is how its first attempt went when that was sent
// already, nil otherwise. It returns how the request ended and the batch
// then (without the items that grew too old while it was retried); a
// request refused as too large or for its protocol is not accounted for
// (deliver decides), and the former comes with the endpoint's answer.
// Once a batch ended, its items' extra parts (histogram copies,
// exemplars) are let go; their series references stay until the chunk is
// written again.
func (s *shard) complete(ctx context.Context, f *flight, batch []item, first *attemptResult) (sendOutcome, []item, error) {
	// Before each retry, samples that have grown older than
	// sample_age_limit leave the batch (counted as dropped, too_old),
	// with the exemplars riding them; the rest is encoded again. Without
	// a limit every retry sends the same bytes.
	expire := func() bool {
		var removed int
		batch, removed = s.ledger.dropExpired(batch)
		if removed == 0 {
			return true
		}
		if len(batch) == 0 {
			f.req.Samples, f.req.Histograms, f.req.Exemplars = 0, 0, 0
			f.sum.reset()
			return false
		}
		s.encode(f, batch)
		return true
	}
	outcome, written, err := s.policy.send(ctx, &f.req, expire, first)
	switch outcome {
	case tooLarge, unsupported:
		return outcome, batch, err
	case sent:
		if limit, back := s.policy.sizes.accepted(len(batch)); back {
			s.policy.log.Info("Remote endpoint accepts requests of max_samples_per_send again", "max_samples_per_send", limit)
		}
	}
	s.ledger.finish(batch, &f.sum, &f.req, outcome, written)
	return outcome, batch, nil
}
