package shape

import "testing"

func TestParse(t *testing.T) {
	for name, want := range map[string][2]int{"1Mx5": {1_000_000, 5}, "100kx10": {100_000, 10}, "2000x20": {2000, 20}} {
		s, err := Parse(name)
		if err != nil || s.Series != want[0] || s.Scrapes != want[1] || s.Name != name {
			t.Errorf("Parse(%q) = %+v, %v", name, s, err)
		}
	}
	for _, bad := range []string{"", "x", "10k", "0x5", "10kx", "ax1", "1Gx1"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}
