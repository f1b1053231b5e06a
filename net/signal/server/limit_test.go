package server

import "testing"

func TestLimitKeys(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:5000", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:5000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:1", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:1", "::ffff:192.0.2.7"},
	} {
		if got := ipOf(tc.remote); got != tc.want {
			t.Errorf("ipOf(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}
