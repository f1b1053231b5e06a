package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// deps returns the packages that go list -deps lists for pkgs.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", strings.Join(pkgs, " "), err)
	}
	return strings.Fields(string(out))
}

// TestPureGo guards the server's promise: it builds without cgo and
// depends on no audio, codec or UI package.
func TestPureGo(t *testing.T) {
	for _, dep := range deps(t, ".") {
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

// TestDesktopLinksNoServerParts guards the other side: the desktop app
// (its binary, its window and its session) links none of what only this
// server needs, a shared Redis store and Prometheus figures, nor gonum.
// "duet serve" in the desktop binary keeps rooms in memory.
func TestDesktopLinksNoServerParts(t *testing.T) {
	const mod = "github.com/duetapp/duet/"
	for _, pkg := range []string{"cmd/duet", "ui", "app"} {
		for _, dep := range deps(t, mod+pkg) {
			for _, banned := range []string{"github.com/redis/", "github.com/prometheus/", "gonum.org/"} {
				if strings.HasPrefix(dep, banned) {
					t.Errorf("%s depends on %s", pkg, dep)
					break
				}
			}
		}
	}
}
