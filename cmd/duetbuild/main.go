// Command duetbuild builds Duet's installable packages from a Debian 12
// machine:
//
//	go run ./cmd/duetbuild windows   # dist/windows: Duet.exe, duet-cli.exe, Duet-windows-amd64.zip
//	go run ./cmd/duetbuild linux     # dist/linux: Duet.tar.xz, its make install checked
//
// windows cross-builds with Debian's mingw-w64 and cgo. The C libraries
// (Opus with custom modes, opusfile and ogg, speexdsp, libsamplerate,
// PortAudio with WASAPI, WDM-KS and MME) are built from the upstream
// tarballs of Debian's source packages (apt-get source; apt needs a deb-src
// entry) into a static mingw prefix under the user cache directory
// ($XDG_CACHE_HOME/duet-build, or -cache), named by a hash of the sources,
// the compiler and the build recipe, and reused while that hash holds. So
// duet.exe is one file needing only Windows' own DLLs. WebRTC audio
// processing is left out (tag nowebrtcapm; Debian's mirror here serves no
// source for it): the Windows canceller is speexdsp's.
//
// The fyne tool (fyne.io/tools, installed into the cache's bin) packages
// Duet.exe with the icon and metadata from FyneApp.toml: a GUI program,
// which has no console. duet-cli.exe is the same file marked as a console
// program, for the subcommands (duet-cli demo, serve, host, join, devices).
// While fyne builds it writes a resource file and a metadata file into
// cmd/duet, and removes them after.
//
// One change is made to Go's standard library in this build, through
// -overlay: net tolerates WSAEOPNOTSUPP from the SIO_UDP_NETRESET ioctl Go
// sends on each new UDP socket, which Wine 8 (Debian 12) does not know, so
// the very binary shipped runs its WebRTC under Wine in the tests. Windows
// itself supports the ioctl, and nothing changes there.
//
// linux builds duet and packages it into Duet.tar.xz with the fyne tool,
// then checks that the Makefile inside installs the binary, the icon and
// the desktop entry under a DESTDIR.
//
// Progress goes to stderr; -v shows each command.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

// fyneTool is the fyne command's module version (the one the proxy serves).
const fyneTool = "fyne.io/tools/cmd/fyne@v1.7.4"

type config struct {
	target string // windows or linux
	out    string // where the packages go
	cache  string // where the C libraries and the fyne tool are kept
	root   string // the module's directory
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "duetbuild:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("duetbuild", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: duetbuild [flags] windows|linux")
		fs.PrintDefaults()
	}
	cfg := config{}
	fs.StringVar(&cfg.out, "out", "dist", "`folder` for the packages (a subfolder per target)")
	fs.StringVar(&cfg.cache, "cache", "", "`folder` for the built C libraries and tools (default: the user cache directory's duet-build)")
	verbose := fs.Bool("v", false, "show each command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "windows" && fs.Arg(0) != "linux") {
		fs.Usage()
		return errors.New("say windows or linux")
	}
	cfg.target = fs.Arg(0)
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	r := &runner{log: log}
	var err error
	if cfg.root, err = moduleRoot(ctx, r); err != nil {
		return err
	}
	if cfg.cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return err
		}
		cfg.cache = filepath.Join(dir, "duet-build")
	}
	for _, p := range []*string{&cfg.cache, &cfg.out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if strings.ContainsAny(cfg.cache, " \t") {
		return fmt.Errorf("the cache folder %q has a space: GOFLAGS cannot carry it", cfg.cache)
	}
	if err := os.MkdirAll(cfg.cache, 0o755); err != nil {
		return err
	}
	start := time.Now()
	var files []string
	if cfg.target == "windows" {
		files, err = buildWindows(ctx, r, cfg)
	} else {
		files, err = buildLinux(ctx, r, cfg)
	}
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Println(f)
	}
	log.Info("done", "target", cfg.target, "took", time.Since(start).Round(time.Second))
	return nil
}

// moduleRoot is the folder of Duet's go.mod.
func moduleRoot(ctx context.Context, r *runner) (string, error) {
	out, err := r.output(ctx, "", nil, "go", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run duetbuild inside Duet's module")
	}
	return filepath.Dir(gomod), nil
}

// needTools checks that the commands a build runs are installed.
func needTools(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: apt-get install %s", strings.Join(missing, ", "), aptPackages)
	}
	return nil
}

// aptPackages are the Debian packages duetbuild needs beyond README's Run
// command (which installs gcc, pkg-config and the Linux libraries).
const aptPackages = "mingw-w64 cmake make xz-utils dpkg-dev"

// installFyne installs the fyne tool into the cache's bin and returns its path.
func installFyne(ctx context.Context, r *runner, cache string) (string, error) {
	bin := filepath.Join(cache, "bin")
	env := append(os.Environ(), "GOBIN="+bin, "GOOS=", "GOARCH=", "GOFLAGS=", "CGO_ENABLED=")
	if _, err := r.output(ctx, "", env, "go", "install", fyneTool); err != nil {
		return "", err
	}
	return filepath.Join(bin, "fyne"), nil
}

// fynePackage runs fyne package for goos in cmd/duet with env, and returns
// the path of what it made (named name, in cmd/duet or dir).
func fynePackage(ctx context.Context, r *runner, cfg config, fyne string, env []string, goos, name string, extra ...string) (string, error) {
	src := filepath.Join(cfg.root, "cmd", "duet")
	// A run killed mid-build leaves these behind, and a Windows resource
	// file in cmd/duet breaks every other build of it.
	if err := removeFyneFiles(src); err != nil {
		return "", err
	}
	// fyne package counts its runs in FyneApp.toml's Build and rewrites the
	// file without its comments: the file is put back as it was.
	meta := filepath.Join(src, "FyneApp.toml")
	saved, err := os.ReadFile(meta)
	if err != nil {
		return "", err
	}
	args := append([]string{"package", "-os", goos, "--src", src, "--icon", "../../assets/icon.png", "--release"}, extra...)
	_, err = r.output(ctx, src, env, fyne, args...)
	if rerr := removeFyneFiles(src); err == nil {
		err = rerr
	}
	if werr := restore(meta, saved); err == nil {
		err = werr
	}
	if err != nil {
		return "", err
	}
	return filepath.Join(src, name), nil
}

// restore writes saved to path (through a link) if it now holds other bytes.
func restore(path string, saved []byte) error {
	now, err := os.ReadFile(path)
	if err == nil && bytes.Equal(now, saved) {
		return nil
	}
	return os.WriteFile(path, saved, 0o644)
}

// fyneFiles are what fyne package (v1.7.4) writes into the source folder
// while it builds.
var fyneFiles = []string{"fyne.syso", "fyne_metadata_init.go"}

func removeFyneFiles(src string) error {
	for _, f := range fyneFiles {
		if err := os.Remove(filepath.Join(src, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// move moves from to the folder dir, replacing what is there.
func move(from, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	to := filepath.Join(dir, filepath.Base(from))
	if err := os.Rename(from, to); err != nil {
		return "", err
	}
	return to, nil
}
