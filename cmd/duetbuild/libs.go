package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// mingwHost is the cross compilers' target triplet (Debian's mingw-w64).
const mingwHost = "x86_64-w64-mingw32"

// recipe changes whenever the way the libraries are built changes, so a
// cache built the old way is not reused.
const recipe = "duetbuild-libs-2"

// A clib is one C library Duet links, built from the upstream tarball
// Debian's source package ships (the .orig.tar.*; Debian's own patches are
// for Linux packaging and are not applied).
type clib struct {
	source string // Debian source package
	build  func(ctx context.Context, b *libBuild, dir string) error
}

// clibs are built in this order: opusfile needs ogg and opus.
var clibs = []clib{
	{"libogg", autotools()},
	{"opus", autotools("--enable-custom-modes", "--disable-doc", "--disable-extra-programs")},
	{"opusfile", autotools("--disable-http", "--disable-examples", "--disable-doc")},
	{"speexdsp", autotools("--disable-examples")},
	{"libsamplerate", buildSamplerate},
	{"portaudio19", buildPortAudio},
}

// A libBuild is one run building the libraries into prefix.
type libBuild struct {
	prefix string
	env    []string // the environment every step runs in
	r      *runner
}

// sourceFile is one file of a source package, as apt lists it.
type sourceFile struct {
	name, sha256 string
}

// listSources asks apt which files make up the source packages, with their
// SHA-256, without downloading them (it needs a deb-src entry).
func listSources(ctx context.Context, r *runner, packages []string) ([]sourceFile, error) {
	out, err := r.output(ctx, "", nil, "apt-get", append([]string{"source", "--print-uris", "--download-only"}, packages...)...)
	if err != nil {
		return nil, fmt.Errorf("%w\n(apt needs a deb-src entry: see README, \"Building for Windows\")", err)
	}
	files, err := parseSourceURIs(out)
	if err != nil {
		return nil, err
	}
	for _, p := range packages {
		if !slices.ContainsFunc(files, func(f sourceFile) bool { return strings.HasPrefix(f.name, p+"_") && isOrig(f.name) }) {
			return nil, fmt.Errorf("apt lists no upstream tarball for %s", p)
		}
	}
	return files, nil
}

// parseSourceURIs reads apt-get source --print-uris: one line per file,
// 'URI' NAME SIZE SHA256:HEX; other lines (notices) are skipped.
func parseSourceURIs(out []byte) ([]sourceFile, error) {
	var files []sourceFile
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) != 4 || !strings.HasPrefix(f[0], "'") {
			continue
		}
		sum, ok := strings.CutPrefix(f[3], "SHA256:")
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 64 {
			return nil, fmt.Errorf("apt-get source: no SHA-256 in %q", s.Text())
		}
		if _, err := strconv.Atoi(f[2]); err != nil || strings.ContainsAny(f[1], "/\\") || f[1] == ".." {
			return nil, fmt.Errorf("apt-get source: bad line %q", s.Text())
		}
		files = append(files, sourceFile{name: f[1], sha256: sum})
	}
	if len(files) == 0 {
		return nil, errors.New("apt-get source listed no files")
	}
	return files, nil
}

func isOrig(name string) bool {
	return strings.Contains(name, ".orig.tar.") && !strings.HasSuffix(name, ".asc")
}

// libsKey is the cache key: the sources' hashes, the compiler's version,
// the recipe and the PortAudio patch.
func libsKey(files []sourceFile, compiler string) string {
	h := sha256.New()
	fmt.Fprintln(h, recipe, compiler, portAudioPatchKey)
	for _, f := range files {
		if isOrig(f.name) {
			fmt.Fprintln(h, f.name, f.sha256)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// buildLibs returns the mingw prefix holding the static C libraries and
// their pkg-config files, built under cache unless a build from the same
// sources is there already.
func buildLibs(ctx context.Context, r *runner, cache string) (string, error) {
	packages := make([]string, len(clibs))
	for i, l := range clibs {
		packages[i] = l.source
	}
	files, err := listSources(ctx, r, packages)
	if err != nil {
		return "", err
	}
	compiler, err := r.output(ctx, "", nil, mingwHost+"-gcc", "-dumpfullversion")
	if err != nil {
		return "", err
	}
	prefix := filepath.Join(cache, "mingw-"+libsKey(files, strings.TrimSpace(string(compiler))))
	done := filepath.Join(prefix, "built")
	if _, err := os.Stat(done); err == nil {
		r.log.Info("C libraries cached", "prefix", prefix)
		return prefix, nil
	}
	// A build that stopped half way is started again.
	if err := os.RemoveAll(prefix); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(cache, "src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	r.log.Info("fetching sources", "packages", packages)
	if _, err := r.output(ctx, work, nil, "apt-get", append([]string{"source", "--download-only"}, packages...)...); err != nil {
		return "", err
	}
	for _, f := range files {
		if err := checkSHA256(filepath.Join(work, f.name), f.sha256); err != nil {
			return "", err
		}
	}
	b := &libBuild{prefix: prefix, r: r, env: append(os.Environ(),
		"PKG_CONFIG_LIBDIR="+filepath.Join(prefix, "lib", "pkgconfig"),
		"PKG_CONFIG_PATH=",
		// mingw has no __memcpy_chk unless libssp is linked too.
		"CFLAGS=-O2 -D_FORTIFY_SOURCE=0",
	)}
	for _, l := range clibs {
		i := slices.IndexFunc(files, func(f sourceFile) bool { return strings.HasPrefix(f.name, l.source+"_") && isOrig(f.name) })
		dir := filepath.Join(work, l.source)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if _, err := r.output(ctx, dir, nil, "tar", "xf", filepath.Join(work, files[i].name), "--strip-components=1"); err != nil {
			return "", err
		}
		r.log.Info("building", "library", l.source)
		if err := l.build(ctx, b, dir); err != nil {
			return "", fmt.Errorf("%s: %w", l.source, err)
		}
	}
	if err := writePkgConfig(prefix); err != nil {
		return "", err
	}
	return prefix, os.WriteFile(done, []byte(strings.Join(packages, "\n")+"\n"), 0o644)
}

func checkSHA256(path, want string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != want {
		return fmt.Errorf("%s: SHA-256 %x, apt said %s", path, got, want)
	}
	return nil
}

func jobs() string { return "-j" + strconv.Itoa(runtime.NumCPU()) }

// autotools builds a library with its configure script, static only.
func autotools(args ...string) func(context.Context, *libBuild, string) error {
	return func(ctx context.Context, b *libBuild, dir string) error {
		conf := append([]string{"--host=" + mingwHost, "--prefix=" + b.prefix, "--disable-shared", "--enable-static"}, args...)
		if _, err := b.r.output(ctx, dir, b.env, "./configure", conf...); err != nil {
			return err
		}
		if _, err := b.r.output(ctx, dir, b.env, "make", jobs()); err != nil {
			return err
		}
		_, err := b.r.output(ctx, dir, b.env, "make", "install")
		return err
	}
}

// buildSamplerate uses CMake: libsamplerate's tarball has no configure.
func buildSamplerate(ctx context.Context, b *libBuild, dir string) error {
	build := filepath.Join(dir, "build")
	if _, err := b.r.output(ctx, dir, b.env, "cmake", "-S", ".", "-B", build,
		"-DCMAKE_SYSTEM_NAME=Windows", "-DCMAKE_C_COMPILER="+mingwHost+"-gcc",
		"-DCMAKE_INSTALL_PREFIX="+b.prefix, "-DCMAKE_BUILD_TYPE=Release",
		"-DBUILD_SHARED_LIBS=OFF", "-DBUILD_TESTING=OFF", "-DLIBSAMPLERATE_EXAMPLES=OFF", "-DLIBSAMPLERATE_INSTALL=ON"); err != nil {
		return err
	}
	_, err := b.r.output(ctx, dir, b.env, "cmake", "--build", build, "--target", "install", "--", jobs())
	return err
}

// buildPortAudio builds PortAudio with WASAPI, WDM-KS and MME, after
// patching 19.6.0 for mingw-w64's own headers (see patchPortAudio).
func buildPortAudio(ctx context.Context, b *libBuild, dir string) error {
	if err := patchPortAudio(dir); err != nil {
		return err
	}
	return autotools("--with-winapi=wasapi,wdmks,wmme")(ctx, b, dir)
}

// portAudioPatch is what 19.6.0 needs to build its WASAPI host API with
// mingw-w64's headers (PortAudio 19.7 does the same upstream): take the
// system's audio headers, which 19.6 includes only for MSVC, and not the
// old copies it carries in mingw-include (WDM-KS still includes two of
// those by path, which works).
var portAudioPatch = []struct{ file, old, new string }{
	{"src/hostapi/wasapi/pa_win_wasapi.c",
		"#if defined(_MSC_VER) && (_MSC_VER >= 1400)\n\t#include <Avrt.h>\n\t#define COBJMACROS\n\t#include <Audioclient.h>",
		"#if defined(_MSC_VER) && (_MSC_VER >= 1400) || defined(__MINGW64_VERSION_MAJOR)\n\t#include <avrt.h>\n\t#define COBJMACROS\n\t#include <audioclient.h>"},
	{"src/hostapi/wasapi/pa_win_wasapi.c",
		"\t#include <functiondiscoverykeys.h>",
		"\t#include <functiondiscoverykeys_devpkey.h>\n\t#include <functiondiscoverykeys.h>"},
	{"configure",
		`-I\$(top_srcdir)/src/hostapi/wasapi/mingw-include `,
		""},
}

// portAudioPatchKey goes into the cache key.
var portAudioPatchKey = func() string {
	h := sha256.New()
	for _, p := range portAudioPatch {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", p.file, p.old, p.new)
	}
	return hex.EncodeToString(h.Sum(nil))[:8]
}()

// patchPortAudio applies portAudioPatch; each change must apply exactly
// once, so a different PortAudio fails here rather than mid-build.
func patchPortAudio(dir string) error {
	for _, p := range portAudioPatch {
		path := filepath.Join(dir, p.file)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if n := strings.Count(string(data), p.old); n != 1 {
			return fmt.Errorf("patching %s: the text to change occurs %d times, want 1 (another PortAudio version?)", p.file, n)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(data), p.old, p.new, 1)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writePkgConfig writes bin/pkg-config into prefix: pkg-config --static,
// so cgo links the libraries' own dependencies (opusfile's ogg) too. (cmd/go
// takes only the first word of $PKG_CONFIG, so it cannot carry the flag.)
func writePkgConfig(prefix string) error {
	bin := filepath.Join(prefix, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bin, "pkg-config"), []byte("#!/bin/sh\nexec pkg-config --static \"$@\"\n"), 0o755)
}
