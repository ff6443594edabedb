package harness

import (
	"bufio"
	"encoding/json"
	"os"
)

// Result is one run of one sender.
type Result struct {
	Shape       string  `json:"shape"`
	Series      int     `json:"series"`
	Scrapes     int     `json:"scrapes"`
	Cell        Cell    `json:"cell"`
	Sender      string  `json:"sender"`
	Iteration   int     `json:"iteration"`
	Usage       Usage   `json:"usage"`
	ShipSeconds float64 `json:"ship_seconds"` // start until the receiver had every sample
	Samples     int64   `json:"samples"`      // expected (the WAL's, times the endpoints)
	Received    int64   `json:"received"`
	Complete    bool    `json:"complete"` // every sample arrived exactly once (the Sum matched)
	WireBytes   int64   `json:"wire_bytes"`
	Requests    int64   `json:"requests"`
	Error       string  `json:"error,omitempty"`
}

// SamplesPerCPUSecond is the sender's throughput per CPU-second.
func (r Result) SamplesPerCPUSecond() float64 {
	if c := r.Usage.CPUSeconds(); c > 0 {
		return float64(r.Samples) / c
	}
	return 0
}

// appendResult adds r to the JSON-lines file path.
func appendResult(path string, r Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadResults reads a JSON-lines results file.
func ReadResults(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
