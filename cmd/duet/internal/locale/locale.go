// Package locale, imported by cmd/duet for its effect alone, gives Fyne a
// locale it can read, so that no command starts with "Fyne error: Error
// parsing user locale C" on stderr.
//
// Fyne's lang package reads the locale from the environment in its init,
// and again when a window opens, through github.com/jeandeaual/go-locale.
// That library knows the C locale only as exactly "C" or "POSIX":
// "C.UTF-8", Debian's default in containers and on servers, reaches
// golang.org/x/text as the language "C", which it refuses, and Fyne logs
// three lines; a modifier ("ca_ES@valencia") fails the same way. Fyne falls
// back to English either way: only the noise is wrong.
//
// This package's init sets LANGUAGE, which go-locale prefers to LANG for
// every locale but the bare "C", to what go-locale should have read:
// English for C and POSIX in any encoding, the locale without its modifier
// otherwise. A LANGUAGE the user set, and a locale go-locale reads as it
// is, are left alone. LANGUAGE only names the languages of messages, so C
// libraries keep the character set LANG gives them.
//
// The init runs before Fyne's: Go initialises, in import-path order, each
// package whose imports are initialised, and this one imports only what
// go-locale imports (os, strings), so it is ready no later than go-locale
// and sorts before it ("github.com/duetapp" < "github.com/jeandeaual").
// TestBinaryQuietLocale in cmd/duet checks the built binary.
package locale

import (
	"os"
	"strings"
)

func init() {
	if v, ok := messagesLanguage(os.Getenv); ok {
		os.Setenv("LANGUAGE", v)
	}
}

// messagesLanguage returns the LANGUAGE that lets go-locale read the locale
// getenv describes, and whether one is needed.
func messagesLanguage(getenv func(string) string) (string, bool) {
	if getenv("LANGUAGE") != "" {
		return "", false
	}
	// go-locale's order: the first of these that is set.
	var loc string
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if loc = getenv(k); loc != "" {
			break
		}
	}
	// language[_territory][.codeset][@modifier]; go-locale drops only the
	// codeset and takes exactly "C" and "POSIX" for English.
	seen, _, _ := strings.Cut(loc, ".")
	name, _, _ := strings.Cut(seen, "@")
	switch {
	case loc == "" || loc == "C" || loc == "POSIX":
		return "", false
	case name == "C" || name == "POSIX":
		return "en", true
	case name != seen:
		return name, true
	}
	return "", false
}
