package reliability

import (
	"context"
	"testing"
)

// The short form of `e2e hostile` (in `make test`): each hostile segment at
// 1 MiB after and before a small good log; inspect and replay count or
// ship every good sample and exit as documented.
func TestHostileShortForm(t *testing.T) {
	results, err := RunHostile(context.Background(), HostileOptions{Walship: builtWalship(t), Work: t.TempDir(), Size: 1 << 20, Series: 100, Records: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2*len(hostileCases) {
		t.Fatalf("%d results, want %d", len(results), 2*len(hostileCases))
	}
	for _, r := range results {
		if r.Err != "" {
			t.Errorf("%s, %s: %s", r.Case, r.Command, r.Err)
		}
		if r.Want != 1500 {
			t.Errorf("%s: the good log holds %d samples, want 1500", r.Case, r.Want)
		}
	}
}
