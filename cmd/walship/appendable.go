//go:build !nosd

package main

import (
	"context"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	promstorage "github.com/prometheus/prometheus/storage"
)

// teeAppendable hands scraped data to the agent's storage (primary: its
// series refs and errors count) and to the remote storage's appender
// (secondary: it only tracks counts and the highest timestamp, as
// upstream's fanout storage does for remote write).
type teeAppendable struct {
	primary, secondary promstorage.Appendable
}

func (t teeAppendable) Appender(ctx context.Context) promstorage.Appender {
	return &teeAppender{primary: t.primary.Appender(ctx), secondary: t.secondary.Appender(ctx)}
}

type teeAppender struct {
	primary, secondary promstorage.Appender
}

func (a *teeAppender) SetOptions(opts *promstorage.AppendOptions) {
	a.primary.SetOptions(opts)
	a.secondary.SetOptions(opts)
}

func (a *teeAppender) Append(ref promstorage.SeriesRef, l labels.Labels, t int64, v float64) (promstorage.SeriesRef, error) {
	ref, err := a.primary.Append(ref, l, t, v)
	if err == nil {
		_, _ = a.secondary.Append(ref, l, t, v)
	}
	return ref, err
}

func (a *teeAppender) AppendExemplar(ref promstorage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (promstorage.SeriesRef, error) {
	ref, err := a.primary.AppendExemplar(ref, l, e)
	if err == nil {
		_, _ = a.secondary.AppendExemplar(ref, l, e)
	}
	return ref, err
}

func (a *teeAppender) AppendHistogram(ref promstorage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	ref, err := a.primary.AppendHistogram(ref, l, t, h, fh)
	if err == nil {
		_, _ = a.secondary.AppendHistogram(ref, l, t, h, fh)
	}
	return ref, err
}

func (a *teeAppender) AppendHistogramSTZeroSample(ref promstorage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	ref, err := a.primary.AppendHistogramSTZeroSample(ref, l, t, st, h, fh)
	if err == nil {
		_, _ = a.secondary.AppendHistogramSTZeroSample(ref, l, t, st, h, fh)
	}
	return ref, err
}

func (a *teeAppender) UpdateMetadata(ref promstorage.SeriesRef, l labels.Labels, m metadata.Metadata) (promstorage.SeriesRef, error) {
	ref, err := a.primary.UpdateMetadata(ref, l, m)
	if err == nil {
		_, _ = a.secondary.UpdateMetadata(ref, l, m)
	}
	return ref, err
}

func (a *teeAppender) AppendSTZeroSample(ref promstorage.SeriesRef, l labels.Labels, t, st int64) (promstorage.SeriesRef, error) {
	ref, err := a.primary.AppendSTZeroSample(ref, l, t, st)
	if err == nil {
		_, _ = a.secondary.AppendSTZeroSample(ref, l, t, st)
	}
	return ref, err
}

func (a *teeAppender) Commit() error {
	if err := a.primary.Commit(); err != nil {
		_ = a.secondary.Rollback()
		return err
	}
	return a.secondary.Commit()
}

func (a *teeAppender) Rollback() error {
	err := a.primary.Rollback()
	_ = a.secondary.Rollback()
	return err
}
