package main

import (
	"io"
	"strings"
	"testing"
)

// TestFlagsAfterScenario: the lab takes its flags before or after the
// scenario's name, as the README writes them.
func TestFlagsAfterScenario(t *testing.T) {
	for _, args := range [][]string{
		{"nosuch", "-song-seconds", "5"},
		{"-song-seconds", "5", "nosuch"},
	} {
		err := run(t.Context(), args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `no scenario "nosuch"`) {
			t.Errorf("run %q: %v, want the unknown scenario named", args, err)
		}
	}
	if err := run(t.Context(), []string{"jitter", "extra"}, io.Discard); err == nil {
		t.Error("two scenarios accepted")
	}
}
