package reliability

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// This file is what the accounting needs when WAL segments are deleted
// on purpose (the sender's disk budget and truncations, the server's
// truncations under a sidecar): a shadow of every segment, and the loss
// the sender reported.

// shadow hard-links every segment that appears in dir into into, so that
// a segment the sender deletes can still be read: the link keeps its data
// (and, for the segment being written, everything written to it later).
// A segment deleted and created again under its name (walship's writer
// deletes the segments a failed write started, and starts them again
// later) is linked again: the file deleted held only what was taken back.
// It polls until ctx ends.
func shadow(ctx context.Context, dir, into string) error {
	if err := os.MkdirAll(into, 0o755); err != nil {
		return err
	}
	for {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !segmentName.MatchString(e.Name()) {
				continue
			}
			src, dst := filepath.Join(dir, e.Name()), filepath.Join(into, e.Name())
			if linked, err := os.Lstat(dst); err == nil {
				if now, err := os.Lstat(src); err != nil || os.SameFile(linked, now) {
					continue
				}
				os.Remove(dst) // created again since it was linked
			}
			os.Link(src, dst) // a segment deleted meanwhile is simply not linked
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond): // polling the directory
		}
	}
}

var segmentName = regexp.MustCompile(`^[0-9]{8}$`)

// listenAddress finds the address a walship process logged it listens on.
func listenAddress(log string) (string, error) {
	f, err := os.Open(log)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, `msg="Web server listening"`) {
			if _, addr, ok := strings.Cut(l, "address="); ok {
				return strings.Fields(addr)[0], nil
			}
		}
	}
	return "", fmt.Errorf("%s: no listen address logged", log)
}

// reported sums the counter metric of the walship process at addr.
func reported(addr, metric string) (int, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	n := 0.0
	if f, ok := families[metric]; ok {
		for _, m := range f.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return int(n), nil
}
