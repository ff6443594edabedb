package storage

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/walship/walship/wal/record"
)

// appender collects one transaction. Its slices are kept between uses (it
// comes from a pool), so appending to a known series allocates nothing.
//
// An appender is not safe for concurrent use.
type appender struct {
	db    *DB
	hints *promstorage.AppendOptions

	samples         []record.RefSample
	sampleSeries    []*memSeries
	histograms      []record.RefHistogramSample
	histogramSeries []*memSeries
	floats          []record.RefFloatHistogramSample
	floatSeries     []*memSeries
	exemplars       []record.RefExemplar
	exemplarSeries  []*memSeries
	meta            []record.RefMetadata
	metaSeries      []*memSeries

	// Commit's scratch space.
	newSeries []record.RefSeries
	marked    []*memSeries
	bufs      [numBufs][]byte // one per record kind, kept between uses
	recs      [][]byte
}

// Shared zero histograms of the start-timestamp zero samples; never modified.
var (
	zeroHistogram      = &histogram.Histogram{}
	zeroFloatHistogram = &histogram.FloatHistogram{}
)

// SetOptions stores the append hints. The only hint, DiscardOutOfOrder,
// changes nothing here: out-of-order samples are always refused.
func (a *appender) SetOptions(opts *promstorage.AppendOptions) { a.hints = opts }

// getOrCreate returns the series for ref, or else for l, creating it.
func (a *appender) getOrCreate(ref promstorage.SeriesRef, l labels.Labels) (*memSeries, error) {
	if ref != 0 {
		if s := a.db.series.byRef(record.Ref(ref)); s != nil {
			return s, nil
		}
	}
	hash := l.Hash()
	if s := a.db.series.byLabels(hash, l); s != nil {
		return s, nil
	}
	if trimmed := l.WithoutEmpty(); trimmed.Len() != l.Len() {
		l, hash = trimmed, trimmed.Hash()
	}
	if l.IsEmpty() {
		return nil, fmt.Errorf("empty label set: %w", ErrInvalidSample)
	}
	if name, dup := l.HasDuplicateLabelNames(); dup {
		return nil, fmt.Errorf("label name %q is not unique: %w", name, ErrInvalidSample)
	}
	s, created := a.db.series.getOrCreate(hash, l)
	if created {
		a.db.metrics.activeSeries.Inc()
	}
	return s, nil
}

// lookup returns the existing series for ref or l, or nil.
func (a *appender) lookup(ref promstorage.SeriesRef, l labels.Labels) *memSeries {
	if ref != 0 {
		if s := a.db.series.byRef(record.Ref(ref)); s != nil {
			return s
		}
	}
	if l.IsEmpty() {
		return nil
	}
	return a.db.series.byLabels(l.Hash(), l)
}

// Append adds a float sample. A sample at or before the series' newest
// committed sample is refused with storage.ErrOutOfOrderSample, as
// upstream's agent does without an out-of-order window.
func (a *appender) Append(ref promstorage.SeriesRef, l labels.Labels, t int64, v float64) (promstorage.SeriesRef, error) {
	s, err := a.getOrCreate(ref, l)
	if err != nil {
		return 0, err
	}
	if t <= s.lastTs.Load() {
		a.db.metrics.outOfOrder.Inc()
		return 0, promstorage.ErrOutOfOrderSample
	}
	a.samples = append(a.samples, record.RefSample{Ref: s.ref, T: t, V: v})
	a.sampleSeries = append(a.sampleSeries, s)
	a.db.metrics.floatsAppended.Inc()
	return promstorage.SeriesRef(s.ref), nil
}

// AppendSTZeroSample adds a zero sample at st, the start timestamp of the
// sample at t that follows it.
func (a *appender) AppendSTZeroSample(ref promstorage.SeriesRef, l labels.Labels, t, st int64) (promstorage.SeriesRef, error) {
	if st >= t {
		return 0, promstorage.ErrSTNewerThanSample
	}
	s, err := a.getOrCreate(ref, l)
	if err != nil {
		return 0, err
	}
	last := s.lastTs.Load()
	if t <= last {
		a.db.metrics.outOfOrder.Inc()
		return 0, promstorage.ErrOutOfOrderSample
	}
	if st <= last {
		return 0, promstorage.ErrOutOfOrderST
	}
	a.samples = append(a.samples, record.RefSample{Ref: s.ref, T: st})
	a.sampleSeries = append(a.sampleSeries, s)
	a.db.metrics.floatsAppended.Inc()
	return promstorage.SeriesRef(s.ref), nil
}

// AppendHistogram adds an integer (h) or float (fh) native histogram sample.
func (a *appender) AppendHistogram(ref promstorage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	if err := validateHistogram(h, fh); err != nil {
		return 0, err
	}
	s, err := a.getOrCreate(ref, l)
	if err != nil {
		return 0, err
	}
	if t <= s.lastTs.Load() {
		a.db.metrics.outOfOrder.Inc()
		return 0, promstorage.ErrOutOfOrderSample
	}
	a.addHistogram(s, t, h, fh)
	return promstorage.SeriesRef(s.ref), nil
}

// AppendHistogramSTZeroSample adds an empty histogram at st, the start
// timestamp of the histogram sample at t that follows it.
func (a *appender) AppendHistogramSTZeroSample(ref promstorage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (promstorage.SeriesRef, error) {
	if err := validateHistogram(h, fh); err != nil {
		return 0, err
	}
	if st >= t {
		return 0, promstorage.ErrSTNewerThanSample
	}
	s, err := a.getOrCreate(ref, l)
	if err != nil {
		return 0, err
	}
	if st <= s.lastTs.Load() {
		return 0, promstorage.ErrOutOfOrderST
	}
	switch {
	case h != nil:
		a.addHistogram(s, st, zeroHistogram, nil)
	case fh != nil:
		a.addHistogram(s, st, nil, zeroFloatHistogram)
	}
	return promstorage.SeriesRef(s.ref), nil
}

func validateHistogram(h *histogram.Histogram, fh *histogram.FloatHistogram) error {
	if h != nil {
		if err := h.Validate(); err != nil {
			return err
		}
	}
	if fh != nil {
		if err := fh.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (a *appender) addHistogram(s *memSeries, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) {
	switch {
	case h != nil:
		a.histograms = append(a.histograms, record.RefHistogramSample{Ref: s.ref, T: t, H: h})
		a.histogramSeries = append(a.histogramSeries, s)
	case fh != nil:
		a.floats = append(a.floats, record.RefFloatHistogramSample{Ref: s.ref, T: t, FH: fh})
		a.floatSeries = append(a.floatSeries, s)
	default:
		return
	}
	a.db.metrics.histogramsAppended.Inc()
}

// AppendExemplar adds an exemplar to an existing series. An exemplar equal
// to the series' previous one is dropped without error, as upstream does.
func (a *appender) AppendExemplar(ref promstorage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (promstorage.SeriesRef, error) {
	s := a.lookup(ref, l)
	if s == nil {
		return 0, fmt.Errorf("add exemplar to series ref %d: %w", ref, ErrUnknownSeries)
	}
	e.Labels = e.Labels.WithoutEmpty()
	if err := validateExemplar(s, e); err != nil {
		if errors.Is(err, promstorage.ErrDuplicateExemplar) {
			return 0, nil
		}
		return 0, err
	}
	latest := e
	s.exemplar.Store(&latest)
	a.exemplars = append(a.exemplars, record.RefExemplar{Ref: s.ref, T: e.Ts, V: e.Value, Labels: e.Labels})
	a.exemplarSeries = append(a.exemplarSeries, s)
	a.db.metrics.exemplarsAppended.Inc()
	return promstorage.SeriesRef(s.ref), nil
}

func validateExemplar(s *memSeries, e exemplar.Exemplar) error {
	if name, dup := e.Labels.HasDuplicateLabelNames(); dup {
		return fmt.Errorf("label name %q is not unique: %w", name, ErrInvalidExemplar)
	}
	n := 0
	if err := e.Labels.Validate(func(l labels.Label) error {
		n += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value)
		if n > exemplar.ExemplarMaxLabelSetLength {
			return promstorage.ErrExemplarLabelLength
		}
		return nil
	}); err != nil {
		return err
	}
	if prev := s.exemplar.Load(); prev != nil && prev.Equals(e) {
		return promstorage.ErrDuplicateExemplar
	}
	return nil
}

// UpdateMetadata records the type, unit and help of an existing series
// when they differ from what was committed last. Empty metadata is ignored.
func (a *appender) UpdateMetadata(ref promstorage.SeriesRef, l labels.Labels, m metadata.Metadata) (promstorage.SeriesRef, error) {
	if m.IsEmpty() {
		return 0, nil
	}
	s := a.lookup(ref, l)
	if s == nil {
		return 0, fmt.Errorf("update metadata of series ref %d %s: %w", ref, l, ErrUnknownSeries)
	}
	if cur := s.meta.Load(); cur != nil && cur.Equals(m) {
		return promstorage.SeriesRef(s.ref), nil
	}
	a.meta = append(a.meta, record.RefMetadata{Ref: s.ref, Type: metricType(m.Type), Unit: m.Unit, Help: m.Help})
	a.metaSeries = append(a.metaSeries, s)
	return promstorage.SeriesRef(s.ref), nil
}

// metricType maps a model.MetricType to the byte metadata records store.
func metricType(t model.MetricType) record.MetricType {
	switch t {
	case model.MetricTypeCounter:
		return record.Counter
	case model.MetricTypeGauge:
		return record.Gauge
	case model.MetricTypeHistogram:
		return record.Histogram
	case model.MetricTypeGaugeHistogram:
		return record.GaugeHistogram
	case model.MetricTypeSummary:
		return record.Summary
	case model.MetricTypeInfo:
		return record.Info
	case model.MetricTypeStateset:
		return record.Stateset
	}
	return record.UnknownMetricType
}

// Rollback discards the transaction. Series it created stay known to the
// DB; their series record is written by the first commit that uses them.
func (a *appender) Rollback() error {
	a.release()
	return nil
}

// release empties the appender and returns it to the pool.
func (a *appender) release() {
	a.hints = nil
	clear(a.histograms) // drop histogram pointers
	clear(a.floats)
	clear(a.exemplars)
	clear(a.meta)
	clear(a.sampleSeries)
	clear(a.histogramSeries)
	clear(a.floatSeries)
	clear(a.exemplarSeries)
	clear(a.metaSeries)
	clear(a.newSeries)
	clear(a.marked)
	clear(a.recs)
	a.samples, a.sampleSeries = a.samples[:0], a.sampleSeries[:0]
	a.histograms, a.histogramSeries = a.histograms[:0], a.histogramSeries[:0]
	a.floats, a.floatSeries = a.floats[:0], a.floatSeries[:0]
	a.exemplars, a.exemplarSeries = a.exemplars[:0], a.exemplarSeries[:0]
	a.meta, a.metaSeries = a.meta[:0], a.metaSeries[:0]
	a.newSeries, a.marked, a.recs = a.newSeries[:0], a.marked[:0], a.recs[:0]
	a.db.appenders.Put(a)
}
