package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// buildWindows builds the C libraries (or finds them cached), then Duet.exe
// with the fyne tool, duet-cli.exe from it, and the zip of both.
func buildWindows(ctx context.Context, r *runner, cfg config) ([]string, error) {
	if err := needTools(mingwHost+"-gcc", "cmake", "make", "pkg-config", "apt-get", "tar"); err != nil {
		return nil, err
	}
	prefix, err := buildLibs(ctx, r, cfg.cache)
	if err != nil {
		return nil, err
	}
	overlay, err := writeNetOverlay(ctx, r, cfg.cache)
	if err != nil {
		return nil, err
	}
	fyne, err := installFyne(ctx, r, cfg.cache)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=1",
		"CC="+mingwHost+"-gcc", "CXX="+mingwHost+"-g++",
		"PKG_CONFIG="+filepath.Join(prefix, "bin", "pkg-config"),
		"PKG_CONFIG_LIBDIR="+filepath.Join(prefix, "lib", "pkgconfig"),
		"PKG_CONFIG_PATH=",
		// The prefix (named by the libraries' hash) in the flags makes Go's
		// build cache tell one build of the libraries from another, which
		// it does not from pkg-config's answers alone.
		"CGO_CFLAGS=-O2 -g -I"+filepath.Join(prefix, "include"),
		"CGO_LDFLAGS=-O2 -g -static -L"+filepath.Join(prefix, "lib"),
		"GOFLAGS=-overlay="+overlay,
	)
	r.log.Info("building Duet.exe (the first time compiles Fyne's GL code for Windows: minutes)")
	exe, err := fynePackage(ctx, r, cfg, fyne, env, "windows", "Duet.exe", "--tags", "nowebrtcapm")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.out, "windows")
	if exe, err = move(exe, dir); err != nil {
		return nil, err
	}
	cli := filepath.Join(dir, "duet-cli.exe")
	if err := consoleCopy(exe, cli); err != nil {
		return nil, err
	}
	zipPath := filepath.Join(dir, "Duet-windows-amd64.zip")
	if err := writeZip(zipPath, exe, cli); err != nil {
		return nil, err
	}
	return []string{exe, cli, zipPath}, nil
}

// writeNetOverlay writes the -overlay file that replaces Go's
// net/fd_windows.go with one that takes WSAEOPNOTSUPP from SIO_UDP_NETRESET
// as "nothing to disable" (Wine 8; see the package doc), and returns its path.
func writeNetOverlay(ctx context.Context, r *runner, cache string) (string, error) {
	out, err := r.output(ctx, "", nil, "go", "env", "GOROOT")
	if err != nil {
		return "", err
	}
	orig := filepath.Join(strings.TrimSpace(string(out)), "src", "net", "fd_windows.go")
	src, err := os.ReadFile(orig)
	if err != nil {
		return "", err
	}
	patched, err := patchNetReset(string(src))
	if err != nil {
		return "", fmt.Errorf("%s: %w", orig, err)
	}
	sum := sha256.Sum256([]byte(patched))
	dir := filepath.Join(cache, "overlay-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	file := filepath.Join(dir, "fd_windows.go")
	if err := os.WriteFile(file, []byte(patched), 0o644); err != nil {
		return "", err
	}
	spec, err := json.Marshal(map[string]map[string]string{"Replace": {orig: file}})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "overlay.json")
	return path, os.WriteFile(path, spec, 0o644)
}

// patchNetReset makes net's SIO_UDP_NETRESET check tolerate WSAEOPNOTSUPP.
func patchNetReset(src string) (string, error) {
	const old = "windows.SIO_UDP_NETRESET, (*byte)(unsafe.Pointer(&flag)), size, nil, 0, &ret, nil, 0)\n\t\tif err != nil {"
	const new = "windows.SIO_UDP_NETRESET, (*byte)(unsafe.Pointer(&flag)), size, nil, 0, &ret, nil, 0)\n\t\tif err != nil && err != syscall.Errno(10045) { // WSAEOPNOTSUPP: Wine 8 has no SIO_UDP_NETRESET"
	if n := strings.Count(src, old); n != 1 {
		return "", fmt.Errorf("the SIO_UDP_NETRESET check occurs %d times, want 1 (another Go version?)", n)
	}
	return strings.Replace(src, old, new, 1), nil
}

// PE header fields (Microsoft's PE format): the offset of the PE signature
// is at 0x3c; the optional header follows the 4-byte signature and the
// 20-byte file header; its Subsystem is at 68 in both PE32 and PE32+.
const (
	peOffsetAt       = 0x3c
	subsystemAt      = 4 + 20 + 68
	subsystemGUI     = 2
	subsystemConsole = 3
)

// consoleCopy copies the GUI program from to the console program to: the
// same bytes but the PE header's subsystem, so Windows gives it a console
// and its output shows in a terminal.
func consoleCopy(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := setSubsystem(data, subsystemGUI, subsystemConsole); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return os.WriteFile(to, data, 0o755)
}

func setSubsystem(exe []byte, from, to uint16) error {
	if len(exe) < peOffsetAt+4 || string(exe[:2]) != "MZ" {
		return errors.New("not a Windows program")
	}
	pe := int(binary.LittleEndian.Uint32(exe[peOffsetAt:]))
	if pe < 0 || len(exe) < pe+subsystemAt+2 || string(exe[pe:pe+4]) != "PE\x00\x00" {
		return errors.New("no PE header")
	}
	if got := binary.LittleEndian.Uint16(exe[pe+subsystemAt:]); got != from {
		return fmt.Errorf("subsystem %d, want %d", got, from)
	}
	binary.LittleEndian.PutUint16(exe[pe+subsystemAt:], to)
	return nil
}

// writeZip writes the files into a zip at path, each under its own name.
func writeZip(path string, files ...string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	z := zip.NewWriter(f)
	for _, name := range files {
		if err := addToZip(z, name); err != nil {
			return err
		}
	}
	return z.Close()
}

func addToZip(z *zip.Writer, name string) error {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	h, err := zip.FileInfoHeader(st)
	if err != nil {
		return err
	}
	h.Method = zip.Deflate
	w, err := z.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, in)
	return err
}
