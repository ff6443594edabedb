package queue

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// This file is the item model: what a shard holds for each sample,
// histogram or exemplar it was given, and the classes the metrics count
// items in.

// item is one sample (or histogram, or exemplar) waiting in a shard. It
// holds two pointers only, so that moving items costs the garbage collector
// little; what histograms and exemplars need besides is in extra.
type item struct {
	series *encodedSeries
	extra  *itemExtra // nil for float samples
	t, st  int64      // timestamp and start timestamp
	v      float64
	seq    uint64 // ack tracker record
	kind   itemKind
}

// itemExtra is the part of a histogram or exemplar item a float sample
// does not need.
type itemExtra struct {
	h   *histogram.Histogram      // a copy the shard owns
	fh  *histogram.FloatHistogram // a copy the shard owns
	exl labels.Labels             // exemplar labels

	// attached are exemplars of a sample's or histogram's series that
	// joined it while it waited (RW2 queues; see feed.attach): they travel
	// in its request and are acknowledged with it.
	attached []attachedExemplar
}

// withExtra returns the item's extra part, adding one if it has none.
func (it *item) withExtra() *itemExtra {
	if it.extra == nil {
		it.extra = &itemExtra{}
	}
	return it.extra
}

// attachedExemplar is an exemplar riding with a sample or histogram item.
type attachedExemplar struct {
	labels labels.Labels
	t      int64
	v      float64
	seq    uint64 // its own record in the ack tracker
}

type itemKind uint8

const (
	kindSample itemKind = iota
	kindHistogram
	kindFloatHistogram
	kindExemplar
)

// itemClass is what the metrics count an item as: a sample, a histogram
// (integer or float) or an exemplar.
type itemClass int

const (
	classSamples itemClass = iota
	classHistograms
	classExemplars
	numClasses
)

func (k itemKind) class() itemClass {
	switch k {
	case kindHistogram, kindFloatHistogram:
		return classHistograms
	case kindExemplar:
		return classExemplars
	}
	return classSamples
}
