package watcher

import (
	"time"

	"github.com/fsnotify/fsnotify"
)

// wakeups gathers what tells the read loop that the log may have grown: a
// writer's Notify, file-system events on the log directory, and a poll
// ticker as the fallback (slow when events work, quick when they do not);
// and the ticker for periodic work (saving the position, checkpoints).
type wakeups struct {
	notify   <-chan struct{}
	fsw      *fsnotify.Watcher // nil when notifications are unavailable
	ticker   *time.Ticker
	periodic *time.Ticker
}

func newWakeups(dir string, notify <-chan struct{}, poll, periodic time.Duration, logf func(msg string, args ...any)) *wakeups {
	w := &wakeups{notify: notify, periodic: time.NewTicker(periodic)}
	fsw, err := fsnotify.NewWatcher()
	if err == nil {
		if err = fsw.Add(dir); err != nil {
			fsw.Close()
			fsw = nil
		}
	}
	if err != nil {
		logf("File-system notifications unavailable, polling the WAL directory", "err", err)
	}
	w.fsw = fsw
	if poll <= 0 {
		poll = 250 * time.Millisecond
		if fsw != nil {
			poll = 5 * time.Second
		}
	}
	w.ticker = time.NewTicker(poll)
	return w
}

// events returns the file-system event and error channels, nil (never
// ready) without notifications.
func (w *wakeups) events() (<-chan fsnotify.Event, <-chan error) {
	if w.fsw == nil {
		return nil, nil
	}
	return w.fsw.Events, w.fsw.Errors
}

func (w *wakeups) close() {
	w.ticker.Stop()
	w.periodic.Stop()
	if w.fsw != nil {
		w.fsw.Close()
	}
}
