package queue

import (
	"iter"

	"github.com/walship/walship/wal/record"
)

// seriesPageBits sets how many refs a page of the series table holds
// (4096: 96 KiB of entries).
const seriesPageBits = 12

// maxPageGap bounds how far beyond its pages a ref may be and still get a
// page (the directory grows by 8 bytes a page: at most 512 KiB for one far
// ref); refs beyond go to a map.
const maxPageGap = 1 << 16

// seriesPage holds the entries of 1<<seriesPageBits consecutive refs.
type seriesPage [1 << seriesPageBits]series

// seriesTable holds a cache's entries by series ref. Prometheus hands out
// refs densely and in order, for the life of its TSDB: most live in pages
// of consecutive refs, found with two bounds checks instead of a hash; a
// page all of whose series were forgotten is freed at the next reset, so
// that the table holds the series alive, not every ref churn ever gave
// out. Pages are never moved: growing costs no copy. Refs far beyond the
// pages go to a map.
type seriesTable struct {
	pages  []*seriesPage // by ref >> seriesPageBits; nil for a page without series
	sparse map[record.Ref]*series
}

// at returns the entry of ref, in whatever state, or nil when there is no
// room for it.
func (t *seriesTable) at(ref record.Ref) *series {
	if p := uint64(ref) >> seriesPageBits; p < uint64(len(t.pages)) {
		if page := t.pages[p]; page != nil {
			return &page[ref&(1<<seriesPageBits-1)]
		}
		return nil
	}
	return t.sparse[ref]
}

// paged reports whether ref is within the table's pages (not in its map).
func (t *seriesTable) paged(ref record.Ref) bool {
	return uint64(ref)>>seriesPageBits < uint64(len(t.pages))
}

// slot returns the entry of ref, creating room for it.
func (t *seriesTable) slot(ref record.Ref) *series {
	p := uint64(ref) >> seriesPageBits
	if p >= uint64(len(t.pages)) && p < uint64(2*len(t.pages)+maxPageGap) {
		t.pages = append(t.pages, make([]*seriesPage, int(p)+1-len(t.pages))...)
		t.page() // the map's entries the pages now reach move there
	}
	if p < uint64(len(t.pages)) {
		return t.inPage(ref)
	}
	s, ok := t.sparse[ref]
	if !ok {
		if t.sparse == nil {
			t.sparse = map[record.Ref]*series{}
		}
		s = &series{}
		t.sparse[ref] = s
	}
	return s
}

// inPage returns the entry of ref, which the pages reach, creating its page.
func (t *seriesTable) inPage(ref record.Ref) *series {
	p := uint64(ref) >> seriesPageBits
	if t.pages[p] == nil {
		t.pages[p] = new(seriesPage)
	}
	return &t.pages[p][ref&(1<<seriesPageBits-1)]
}

// page moves the map's entries the pages reach into them: at looks for a
// ref the pages reach only there.
func (t *seriesTable) page() {
	for ref, s := range t.sparse {
		if t.paged(ref) {
			*t.inPage(ref) = *s
			delete(t.sparse, ref)
		}
	}
}

// all yields every entry with room, in whatever state.
func (t *seriesTable) all() iter.Seq2[record.Ref, *series] {
	return func(yield func(record.Ref, *series) bool) {
		for p, page := range t.pages {
			if page == nil {
				continue
			}
			for i := range page {
				if !yield(record.Ref(p<<seriesPageBits|i), &page[i]) {
					return
				}
			}
		}
		for ref, s := range t.sparse {
			if !yield(ref, s) {
				return
			}
		}
	}
}

// trim frees the pages and map entries that hold no series.
func (t *seriesTable) trim() {
	for p, page := range t.pages {
		if page != nil && emptyPage(page) {
			t.pages[p] = nil
		}
	}
	for ref, s := range t.sparse {
		if s.state == seriesUnknown {
			delete(t.sparse, ref)
		}
	}
}

func emptyPage(page *seriesPage) bool {
	for i := range page {
		if page[i].state != seriesUnknown {
			return false
		}
	}
	return true
}
