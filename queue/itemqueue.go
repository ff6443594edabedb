package queue

// This file is a shard's buffer: items in chunks of one batch, written in
// place by the feeder and taken whole by the shard.

// itemQueue is a shard's waiting items, oldest first, kept in chunks of one
// batch (max_samples_per_send items) each: the feeder writes every item
// once, in place (push), and the shard takes a whole chunk as its batch
// without copying it (pop). Only the newest chunk may be short. The shard's
// mutex guards it.
type itemQueue struct {
	batch  int      // chunk size
	chunks [][]item // waiting items, oldest chunk first
	n      int      // items in chunks
	free   [][]item // emptied chunks kept for reuse
}

// maxFreeChunks bounds the chunks kept for reuse: one being filled while
// one is sent needs two.
const maxFreeChunks = 2

// len returns how many items wait.
func (q *itemQueue) len() int { return q.n }

// push adds an item at the end and returns it to be filled in.
func (q *itemQueue) push() *item {
	last := len(q.chunks) - 1
	if last < 0 || len(q.chunks[last]) == q.batch {
		q.chunks = append(q.chunks, q.newChunk())
		last++
	}
	c := q.chunks[last]
	c = c[:len(c)+1]
	q.chunks[last] = c
	q.n++
	return &c[len(c)-1]
}

// pop removes and returns the oldest chunk if at least least items wait,
// nil otherwise. When least is a whole batch, the chunk returned is full.
func (q *itemQueue) pop(least int) []item {
	if q.n == 0 || q.n < least {
		return nil
	}
	c := q.chunks[0]
	copy(q.chunks, q.chunks[1:])
	q.chunks[len(q.chunks)-1] = nil
	q.chunks = q.chunks[:len(q.chunks)-1]
	q.n -= len(c)
	return c
}

// recycle takes back a chunk pop returned, once its items were cleared.
func (q *itemQueue) recycle(c []item) {
	if len(q.free) < maxFreeChunks && cap(c) == q.batch {
		q.free = append(q.free, c[:0])
	}
}

func (q *itemQueue) newChunk() []item {
	if n := len(q.free); n > 0 {
		c := q.free[n-1]
		q.free[n-1] = nil
		q.free = q.free[:n-1]
		return c
	}
	return make([]item, 0, q.batch)
}
