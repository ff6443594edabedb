package receivers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/prometheus/prometheus/tsdb/record"
)

// featureMetadata is the features WAL's metadata, by metric family.
var featureMetadata = map[string]record.RefMetadata{
	histName:    {Type: uint8(record.HistogramSample), Unit: "seconds", Help: "walship e2e latency"},
	counterName: {Type: uint8(record.Counter), Help: "walship e2e requests"},
}

// readMetadata counts the metric families of featureMetadata whose type,
// help and unit the receiver's /api/v1/metadata returns as the WAL's
// metadata records say.
func readMetadata(ctx context.Context, base string) (int, error) {
	resp, err := get(ctx, base+"/api/v1/metadata")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Data   map[string][]struct{ Type, Help, Unit string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		return 0, fmt.Errorf("metadata: %s: %v", resp.Status, err)
	}
	n := 0
	for name, want := range featureMetadata {
		for _, m := range body.Data[name] {
			if m.Type == string(record.ToMetricType(want.Type)) && m.Help == want.Help && m.Unit == want.Unit {
				n++
				break
			}
		}
	}
	return n, nil
}
