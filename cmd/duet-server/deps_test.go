package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPureGo guards the server's promise: it builds without cgo and
// depends on no audio, codec or UI package.
func TestPureGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"fyne.io/", "portaudio", "hraban/opus", "duet/audio", "duet/app", "duet/ui", "samplerate"} {
			if strings.Contains(dep, banned) {
				t.Errorf("the server depends on %s", dep)
			}
		}
	}
	build := exec.Command("go", "build", "-o", os.DevNull, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, b)
	}
}
