package queue

import (
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// newTestTable returns a label table with strings of its own.
func newTestTable() *labelTable { return newLabelTable(&Interner{}) }

// internSeries interns ls in tab as a queue's series, without metadata.
func internSeries(tab *labelTable, ls labels.Labels) *encodedSeries {
	return &encodedSeries{set: tab.add(ls)}
}

// withMeta returns d with RW2 metadata instead of its own, for d's
// holder: typ is a model.MetricType string.
func withMeta(tab *labelTable, d *encodedSeries, typ, help, unit string) *encodedSeries {
	t := uint8(writev2.FromMetadataType(model.MetricType(typ)))
	m := &encodedSeries{set: tab.withMetadata(d.set, t, help, unit)}
	tab.release(d.set)
	return m
}

// setIDs returns the label ids of s.
func setIDs(s labelSet) []uint32 {
	var ids []uint32
	for id := range s.reader().ids() {
		ids = append(ids, id)
	}
	return ids
}

// A set's RW1 entries are the labels' gogo encoding, whatever the labels
// share with the series added before them, and the metadata round-trips.
func TestLabelTable(t *testing.T) {
	tab := newTestTable()
	var sets []labelSet
	var want []labels.Labels
	for i := range 3000 {
		ls := labels.FromStrings("__name__", fmt.Sprint("m", i%7), "instance", fmt.Sprint("host-", i/100), "pod", fmt.Sprint("p", i), "z", "")
		sets = append(sets, tab.add(ls))
		want = append(want, ls)
	}
	dir := tab.snapshot()
	for i, s := range sets {
		w, err := (&prompb.TimeSeries{Labels: prompb.FromLabels(want[i], nil)}).Marshal()
		require.NoError(t, err)
		require.Equal(t, w, appendRW1Set(nil, dir, s))
		require.Equal(t, len(w), s.rw1Size())
		var names []string
		for id := range s.reader().ids() {
			l := dir.label(id)
			names = append(names, tab.strings.String(l.name)+"="+tab.strings.String(l.value))
		}
		require.Equal(t, []string{"__name__=m" + fmt.Sprint(i%7), "instance=host-" + fmt.Sprint(i/100), "pod=p" + fmt.Sprint(i), "z="}, names)
		_, _, _, ok := s.metadata()
		require.False(t, ok)
	}
	require.Equal(t, 7+30+3000+1, tab.live())

	m := tab.withMetadata(sets[5], 2, "help text", "seconds")
	typ, help, unit, ok := m.metadata()
	require.True(t, ok)
	require.Equal(t, uint8(2), typ)
	require.Equal(t, "help text", tab.strings.String(help))
	require.Equal(t, "seconds", tab.strings.String(unit))
	require.Equal(t, appendRW1Set(nil, dir, sets[5]), appendRW1Set(nil, dir, m))

	// Releasing every set frees every label and string.
	for _, s := range sets {
		tab.release(s)
	}
	require.Equal(t, 4, tab.live(), "the metadata copy still holds its labels")
	tab.release(m)
	require.Equal(t, 0, tab.live())
	require.Equal(t, 1, tab.strings.Live())
	require.Panics(t, func() { tab.release(m) })

	// Freed ids are reused.
	n := len(tab.refs)
	tab.add(labels.FromStrings("a", "b"))
	require.Equal(t, n, len(tab.refs))
}
