package app

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The guest's track cache (Config.CacheDir) holds one file per song, named
// by its SHA-256 in hex, and a ".part" file for one still arriving. A file's
// modification time is when it was last used: written to, or found there
// for an offer. Each offer prunes the cache: it removes files unused for
// cacheMaxAge, parts that have not grown for cachePartAge (an abandoned
// transfer), and then the least recently used until the offered track
// fits in cacheMaxBytes. It touches no other file in the folder.
const (
	cacheMaxBytes = 1 << 30
	cacheMaxAge   = 30 * 24 * time.Hour
	cachePartAge  = 24 * time.Hour
)

// cacheLimits are pruneCache's limits; see the consts.
type cacheLimits struct {
	maxBytes        int64
	maxAge, partAge time.Duration
}

// pruneCache prunes the cache in dir at time now to make room for need
// bytes of the track keep (its files are left alone). It returns the names
// it removed; an error is one it could not remove or read, after doing
// what it could.
func pruneCache(dir, keep string, need int64, now time.Time, lim cacheLimits) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("track cache: %w", err)
	}
	type file struct {
		name string
		size int64
		used time.Time
	}
	var (
		files   []file
		total   int64
		removed []string
		errs    []error
	)
	remove := func(name string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
			return
		}
		removed = append(removed, name)
	}
	for _, e := range entries {
		digest, part := strings.CutSuffix(e.Name(), ".part")
		if !e.Type().IsRegular() || !isDigest(digest) || digest == keep {
			continue
		}
		info, err := e.Info()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		age := now.Sub(info.ModTime())
		if age > lim.maxAge || (part && age > lim.partAge) {
			remove(e.Name())
			continue
		}
		files = append(files, file{e.Name(), info.Size(), info.ModTime()})
		total += info.Size()
	}
	slices.SortFunc(files, func(a, b file) int { return a.used.Compare(b.used) })
	for _, f := range files {
		if total+need <= lim.maxBytes {
			break
		}
		remove(f.name)
		total -= f.size
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("track cache: %w", err)
	}
	return removed, nil
}

// isDigest reports a SHA-256 spelled as the cache names files: 64
// lower-case hex digits.
func isDigest(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && strings.ToLower(s) == s
}
