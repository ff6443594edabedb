package watcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// PositionStore keeps one consumer's acknowledged position durably.
type PositionStore interface {
	// Load returns the saved position, and false when none was saved.
	Load() (record.Position, bool, error)
	// Save replaces the saved position; when it returns nil the position
	// survives a crash.
	Save(record.Position) error
}

// FilePositions stores a position in one small JSON file, replaced
// atomically: written to a temporary file, fsynced, renamed over the old
// one, and the directory fsynced.
type FilePositions struct {
	fsys wal.FS
	path string
}

// NewFilePositions returns a store keeping its position in path. fsys nil
// means the real filesystem.
func NewFilePositions(fsys wal.FS, path string) *FilePositions {
	if fsys == nil {
		fsys = wal.OS
	}
	return &FilePositions{fsys: fsys, path: path}
}

type positionFile struct {
	Segment int   `json:"segment"`
	Offset  int64 `json:"offset"`
}

// Load reads the saved position.
func (p *FilePositions) Load() (record.Position, bool, error) {
	f, err := p.fsys.Open(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return record.Position{}, false, nil
	}
	if err != nil {
		return record.Position{}, false, fmt.Errorf("load position: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return record.Position{}, false, fmt.Errorf("load position: %w", err)
	}
	var pf positionFile
	if err := json.Unmarshal(data, &pf); err != nil || pf.Segment < 0 || pf.Offset < 0 {
		return record.Position{}, false, fmt.Errorf("load position from %s: not a position file: %q", p.path, data)
	}
	return record.Position{Segment: pf.Segment, Offset: pf.Offset}, true, nil
}

// Save writes pos durably.
func (p *FilePositions) Save(pos record.Position) error {
	dir := filepath.Dir(p.path)
	if err := p.fsys.MkdirAll(dir); err != nil {
		return fmt.Errorf("save position: %w", err)
	}
	data, _ := json.Marshal(positionFile{Segment: pos.Segment, Offset: pos.Offset})
	tmp := p.path + ".tmp"
	f, err := p.fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("save position: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = p.fsys.Rename(tmp, p.path)
	}
	if err == nil {
		err = p.fsys.SyncDir(dir)
	}
	if err != nil {
		p.fsys.Remove(tmp)
		return fmt.Errorf("save position: %w", err)
	}
	return nil
}
