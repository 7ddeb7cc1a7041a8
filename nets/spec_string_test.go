package nets

import "testing"

// The start line and --help show the network as people read it.
func TestSpecString(t *testing.T) {
	for _, c := range []struct {
		s    Spec
		want string
	}{
		{Spec{Inputs: 4, Hidden: []int{64, 64}, Outputs: 2}, "4 → 64 → 64 → 2, MLP"},
		{Spec{Inputs: 6, Hidden: []int{256, 256}, Outputs: 3, Dueling: true}, "6 → 256 → 256 → 3, MLP, dueling"},
		{MinAtarSpec(4, 3), "10×10×4 → 16@3×3 → 128 → 3, conv"},
		{Spec{Inputs: 4, Hidden: []int{64, 64}, Outputs: 2, LayerNorm: true}, "4 → 64 → 64 → 2, MLP, layer_norm"},
		{withLN(withDueling(MinAtarSpec(4, 3))), "10×10×4 → 16@3×3 → 128 → 3, conv, dueling, layer_norm"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%#v: %q, want %q", c.s, got, c.want)
		}
	}
}
