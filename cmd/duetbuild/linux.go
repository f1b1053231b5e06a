package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// buildLinux builds Duet.tar.xz with the fyne tool and checks its make install.
func buildLinux(ctx context.Context, r *runner, cfg config) ([]string, error) {
	if err := needTools("make", "tar", "xz", "pkg-config", "gcc"); err != nil {
		return nil, err
	}
	fyne, err := installFyne(ctx, r, cfg.cache)
	if err != nil {
		return nil, err
	}
	// The binary is a plain go build, which shares Go's build cache with go
	// run ./cmd/duet and the tests: fyne's own build adds C flags and the
	// release tag, and so compiles Fyne's GL code once more (4.5 minutes
	// cold on 2 cores). The window's ID is set in cmd/duet, not taken from
	// the metadata fyne's build would compile in.
	tmp, err := os.MkdirTemp("", "duet-linux-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	exe := filepath.Join(tmp, "duet")
	r.log.Info("building duet (the first time compiles Fyne's GL code: minutes)")
	env := append(os.Environ(), "GOOS=linux", "CGO_ENABLED=1")
	if _, err := r.output(ctx, cfg.root, env, "go", "build", "-o", exe, "./cmd/duet"); err != nil {
		return nil, err
	}
	pkg, err := fynePackage(ctx, r, cfg, fyne, env, "linux", "Duet.tar.xz", "--exe", exe)
	if err != nil {
		return nil, err
	}
	if pkg, err = move(pkg, filepath.Join(cfg.out, "linux")); err != nil {
		return nil, err
	}
	installed, err := checkInstall(ctx, r, pkg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	r.log.Info("make install puts in place", "files", strings.Join(installed, " "))
	return []string{pkg}, nil
}

// checkInstall unpacks the fyne package and runs its make install into a
// DESTDIR, then checks what landed there: an executable named duet, a PNG
// icon and a desktop entry that runs the one and shows the other. It
// returns the installed files, relative to DESTDIR.
func checkInstall(ctx context.Context, r *runner, pkg string) ([]string, error) {
	tmp, err := os.MkdirTemp("", "duet-install-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	unpacked, dest := filepath.Join(tmp, "pkg"), filepath.Join(tmp, "root")
	if err := os.MkdirAll(unpacked, 0o755); err != nil {
		return nil, err
	}
	if _, err := r.output(ctx, unpacked, nil, "tar", "xJf", pkg); err != nil {
		return nil, err
	}
	makefiles, err := filepath.Glob(filepath.Join(unpacked, "*", "Makefile"))
	if err != nil || len(makefiles) != 1 {
		return nil, fmt.Errorf("want one folder with a Makefile in the package, found %v", makefiles)
	}
	if _, err := r.output(ctx, filepath.Dir(makefiles[0]), nil, "make", "install", "DESTDIR="+dest); err != nil {
		return nil, err
	}
	return checkInstalled(dest)
}

// checkInstalled checks the tree make install left under dest.
func checkInstalled(dest string) ([]string, error) {
	var files, bins, icons, desktops []string
	err := filepath.WalkDir(dest, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dest, path)
		if err != nil {
			return err
		}
		files = append(files, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case filepath.Base(filepath.Dir(rel)) == "bin" && info.Mode()&0o111 != 0:
			bins = append(bins, rel)
		case strings.HasSuffix(rel, ".png"):
			icons = append(icons, rel)
		case strings.HasSuffix(rel, ".desktop") && strings.Contains(rel, "share/applications/"):
			desktops = append(desktops, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(bins) != 1 || filepath.Base(bins[0]) != "duet" || len(icons) != 1 || len(desktops) != 1 {
		return nil, fmt.Errorf("make install put %v in place; want one executable duet in a bin folder, one PNG icon, one desktop entry", files)
	}
	entry, err := os.ReadFile(filepath.Join(dest, desktops[0]))
	if err != nil {
		return nil, err
	}
	icon := strings.TrimSuffix(filepath.Base(icons[0]), ".png")
	for _, want := range []string{"Exec=duet", "Icon=" + icon, "Name=Duet"} {
		if !hasLine(string(entry), want) {
			return nil, fmt.Errorf("%s has no line starting %q:\n%s", desktops[0], want, entry)
		}
	}
	return files, nil
}

func hasLine(text, prefix string) bool {
	for l := range strings.Lines(text) {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
