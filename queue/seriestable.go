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

// pageDir is a directory of pages of consecutive refs, by ref >>
// seriesPageBits, each made when first needed; nil for a page not made
// or freed.
type pageDir[P any] []*P

// reaches reports whether ref's page is within the directory.
func (d pageDir[P]) reaches(ref record.Ref) bool {
	return uint64(ref)>>seriesPageBits < uint64(len(d))
}

// of returns the page of ref, nil when there is none.
func (d pageDir[P]) of(ref record.Ref) *P {
	if p := uint64(ref) >> seriesPageBits; p < uint64(len(d)) {
		return d[p]
	}
	return nil
}

// make returns the page of ref, growing the directory to reach it and
// making the page as needed.
func (d *pageDir[P]) make(ref record.Ref) *P {
	p := int(uint64(ref) >> seriesPageBits)
	if p >= len(*d) {
		*d = append(*d, make([]*P, p+1-len(*d))...)
	}
	if (*d)[p] == nil {
		(*d)[p] = new(P)
	}
	return (*d)[p]
}

// trim frees the pages empty reports empty.
func (d pageDir[P]) trim(empty func(*P) bool) {
	for p, page := range d {
		if page != nil && empty(page) {
			d[p] = nil
		}
	}
}

// inPage is ref's index in its page.
func inPage(ref record.Ref) int { return int(ref & (1<<seriesPageBits - 1)) }

// seriesTable holds a cache's entries by series ref. Prometheus hands out
// refs densely and in order, for the life of its TSDB: most live in pages
// of consecutive refs, found with two bounds checks instead of a hash; a
// page all of whose series were forgotten is freed at the next reset, so
// that the table holds the series alive, not every ref churn ever gave
// out. Pages are never moved: growing costs no copy. Refs far beyond the
// pages go to a map.
type seriesTable struct {
	pages  pageDir[seriesPage]
	sparse map[record.Ref]*series
}

// at returns the entry of ref, in whatever state, or nil when there is no
// room for it.
func (t *seriesTable) at(ref record.Ref) *series {
	if !t.pages.reaches(ref) {
		return t.sparse[ref]
	}
	if page := t.pages.of(ref); page != nil {
		return &page[inPage(ref)]
	}
	return nil
}

// paged reports whether ref is within the table's pages (not in its map).
func (t *seriesTable) paged(ref record.Ref) bool { return t.pages.reaches(ref) }

// slot returns the entry of ref, creating room for it.
func (t *seriesTable) slot(ref record.Ref) *series {
	if !t.pages.reaches(ref) && uint64(ref)>>seriesPageBits < uint64(2*len(t.pages)+maxPageGap) {
		t.pages.make(ref)
		t.page() // the map's entries the pages now reach move there
	}
	if t.pages.reaches(ref) {
		return &t.pages.make(ref)[inPage(ref)]
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

// page moves the map's entries the pages reach into them: at looks for a
// ref the pages reach only there.
func (t *seriesTable) page() {
	for ref, s := range t.sparse {
		if t.pages.reaches(ref) {
			t.pages.make(ref)[inPage(ref)] = *s
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
	t.pages.trim(func(page *seriesPage) bool {
		for i := range page {
			if page[i].state != seriesUnknown {
				return false
			}
		}
		return true
	})
	for ref, s := range t.sparse {
		if s.state == seriesUnknown {
			delete(t.sparse, ref)
		}
	}
}
