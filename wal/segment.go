package wal

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
)

// SegmentName returns the file name of segment i: eight decimal digits.
func SegmentName(i int) string { return fmt.Sprintf("%08d", i) }

// SegmentPath returns the path of segment i in dir.
func SegmentPath(dir string, i int) string { return filepath.Join(dir, SegmentName(i)) }

// ParseSegmentName returns the index a segment file name stands for. Only
// names made entirely of decimal digits are segments (Prometheus wrote
// six-digit names long ago; they still parse).
func ParseSegmentName(name string) (int, bool) {
	if name == "" || len(name) > 10 {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(name)
	return i, err == nil
}

// SegmentRef names one segment file of a directory.
type SegmentRef struct {
	Index int
	Name  string
}

// ListSegments returns the segments of dir sorted by index. Entries that
// are not segments (checkpoint directories, temporary and repair files) are
// ignored. Unlike upstream it does not fail when indexes have gaps; use
// Gaps to find them.
func ListSegments(fsys FS, dir string) ([]SegmentRef, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	var refs []SegmentRef
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if i, ok := ParseSegmentName(e.Name()); ok {
			refs = append(refs, SegmentRef{Index: i, Name: e.Name()})
		}
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].Index < refs[b].Index })
	return refs, nil
}

// Gaps returns the indexes missing between the first and the last of refs,
// which must be sorted as ListSegments returns them.
func Gaps(refs []SegmentRef) []int {
	var missing []int
	for i := 1; i < len(refs); i++ {
		for k := refs[i-1].Index + 1; k < refs[i].Index; k++ {
			missing = append(missing, k)
		}
	}
	return missing
}

// Segments returns the first and last segment index in dir, or -1, -1 when
// it has none.
func Segments(fsys FS, dir string) (first, last int, err error) {
	refs, err := ListSegments(fsys, dir)
	if err != nil {
		return 0, 0, err
	}
	if len(refs) == 0 {
		return -1, -1, nil
	}
	return refs[0].Index, refs[len(refs)-1].Index, nil
}

// SegmentRange is a closed range of segment indexes in one directory. A
// negative First means from the first segment; a negative Last, up to the
// last one.
type SegmentRange struct {
	Dir         string
	First, Last int
}

// Resolve lists the segments of r.Dir inside the range.
func (r SegmentRange) Resolve(fsys FS) ([]SegmentRef, error) {
	refs, err := ListSegments(fsys, r.Dir)
	if err != nil {
		return nil, err
	}
	out := refs[:0]
	for _, s := range refs {
		if (r.First < 0 || s.Index >= r.First) && (r.Last < 0 || s.Index <= r.Last) {
			out = append(out, s)
		}
	}
	return out, nil
}
