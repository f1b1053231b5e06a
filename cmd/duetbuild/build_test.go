package main

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSourceURIs(t *testing.T) {
	out := []byte(`Reading package lists...
NOTICE: 'opus' packaging is maintained in the 'Git' version control system at:
'http://deb.debian.org/debian/pool/main/o/opus/opus_1.3.1-3.dsc' opus_1.3.1-3.dsc 2295 SHA256:c373ac82a1afb824819618c12e279ee47b6ac2fa18083b9ef2bb9e8e9e588419
'http://deb.debian.org/debian/pool/main/o/opus/opus_1.3.1.orig.tar.gz' opus_1.3.1.orig.tar.gz 1040054 SHA256:65b58e1e25b2a114157014736a3d9dfeaad8d41be1c8179866f144a2fb44ff9d
`)
	files, err := parseSourceURIs(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[1].name != "opus_1.3.1.orig.tar.gz" || !strings.HasPrefix(files[1].sha256, "65b58e1e") {
		t.Fatalf("parsed %+v", files)
	}
	key := libsKey(files, "12")
	if key == libsKey(files, "13") {
		t.Error("the key does not change with the compiler")
	}
	files[1].sha256 = strings.Repeat("0", 64)
	if key == libsKey(files, "12") {
		t.Error("the key does not change with the tarball's hash")
	}
	for _, bad := range []string{
		"'http://x/a' ../evil 12 SHA256:" + strings.Repeat("a", 64),
		"'http://x/a' a.tar.gz 12 MD5:abc",
		"'http://x/a' a.tar.gz 12 SHA256:zz",
		"nothing from apt at all",
	} {
		if _, err := parseSourceURIs([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSetSubsystem(t *testing.T) {
	exe := make([]byte, 512)
	copy(exe, "MZ")
	binary.LittleEndian.PutUint32(exe[peOffsetAt:], 0x80)
	copy(exe[0x80:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(exe[0x80+subsystemAt:], subsystemGUI)
	if err := setSubsystem(exe, subsystemGUI, subsystemConsole); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint16(exe[0x80+subsystemAt:]); got != subsystemConsole {
		t.Errorf("subsystem %d after, want %d", got, subsystemConsole)
	}
	// Again: it is a console program now, not the GUI one expected.
	if err := setSubsystem(exe, subsystemGUI, subsystemConsole); err == nil {
		t.Error("no error for a program that is not a GUI one")
	}
	if err := setSubsystem([]byte("\x7fELF and more bytes than the header offset needs to be read......."), 2, 3); err == nil {
		t.Error("no error for an ELF file")
	}
	binary.LittleEndian.PutUint32(exe[peOffsetAt:], 1<<31)
	if err := setSubsystem(exe, subsystemConsole, subsystemGUI); err == nil {
		t.Error("no error for a PE offset past the end")
	}
}

// TestPatchNetReset patches this Go's own net/fd_windows.go: a Go whose
// file changed fails here, not in the middle of a Windows build.
func TestPatchNetReset(t *testing.T) {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "src", "net", "fd_windows.go"))
	if err != nil {
		t.Fatal(err)
	}
	patched, err := patchNetReset(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(patched, "err != syscall.Errno(10045)") {
		t.Error("the patch is not in the file")
	}
	if _, err := patchNetReset(patched); err == nil {
		t.Error("patching twice: no error")
	}
}

func TestPatchPortAudio(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wasapi := "before\n" + portAudioPatch[0].old + "\nmiddle\n" + portAudioPatch[1].old + "\nafter\n"
	write(portAudioPatch[0].file, wasapi)
	write("configure", `CFLAGS="$CFLAGS `+portAudioPatch[2].old+`-UPA_USE_WASAPI"`)
	if err := patchPortAudio(dir); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "configure"))
	if want := `CFLAGS="$CFLAGS -UPA_USE_WASAPI"`; string(got) != want {
		t.Errorf("configure after: %s, want %s", got, want)
	}
	if err := patchPortAudio(dir); err == nil {
		t.Error("patching twice: no error")
	}
}

func TestCheckInstalled(t *testing.T) {
	tree := func(entry string, files ...string) string {
		dest := t.TempDir()
		for _, f := range files {
			path := filepath.Join(dest, f)
			os.MkdirAll(filepath.Dir(path), 0o755)
			mode, text := os.FileMode(0o644), ""
			if strings.Contains(f, "/bin/") {
				mode = 0o755
			}
			if strings.HasSuffix(f, ".desktop") {
				text = entry
			}
			if err := os.WriteFile(path, []byte(text), mode); err != nil {
				t.Fatal(err)
			}
		}
		return dest
	}
	good := []string{"usr/local/bin/duet", "usr/local/share/pixmaps/Duet.png", "usr/local/share/applications/Duet.desktop"}
	entry := "[Desktop Entry]\nName=Duet\nExec=duet\nIcon=Duet\n"
	if _, err := checkInstalled(tree(entry, good...)); err != nil {
		t.Errorf("a good install: %v", err)
	}
	for name, dest := range map[string]string{
		"no icon":      tree(entry, good[0], good[2]),
		"no binary":    tree(entry, good[1], good[2]),
		"no entry":     tree(entry, good[0], good[1]),
		"wrong icon":   tree("[Desktop Entry]\nName=Duet\nExec=duet\nIcon=other\n", good...),
		"wrong binary": tree(entry, "usr/local/bin/other", good[1], good[2]),
	} {
		if _, err := checkInstalled(dest); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
