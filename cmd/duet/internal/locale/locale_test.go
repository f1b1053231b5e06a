package locale

import (
	"os"
	"testing"

	golocale "github.com/jeandeaual/go-locale"
	"golang.org/x/text/language"
)

// TestFyneReadsLocale sets each environment, applies what init does, and
// reads the locale the way Fyne does (go-locale, then x/text): every tag
// parses. It also checks the environments that need LANGUAGE do fail
// without it, so the table keeps testing the library's real gap.
func TestFyneReadsLocale(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		broken    bool   // go-locale alone yields a tag x/text refuses
		wantLang  string // LANGUAGE afterwards ("" unset)
		wantFirst string // the first locale go-locale reads ("" none)
	}{
		{"C.UTF-8", map[string]string{"LANG": "C.UTF-8"}, true, "en", "en"},
		{"C.utf8 in LC_ALL", map[string]string{"LC_ALL": "C.utf8", "LANG": "de_DE.UTF-8"}, true, "en", "en"},
		{"POSIX.UTF-8 in LC_MESSAGES", map[string]string{"LC_MESSAGES": "POSIX.UTF-8"}, true, "en", "en"},
		{"modifier", map[string]string{"LANG": "ca_ES@valencia"}, true, "ca_ES", "ca-ES"},
		{"plain C", map[string]string{"LANG": "C"}, false, "", ""},
		{"unset", map[string]string{}, false, "", ""},
		{"en_US.UTF-8", map[string]string{"LANG": "en_US.UTF-8"}, false, "", "en-US"},
		{"codeset then modifier", map[string]string{"LANG": "de_DE.UTF-8@euro"}, false, "", "de-DE"},
		{"the user's LANGUAGE", map[string]string{"LANG": "C.UTF-8", "LANGUAGE": "fr_FR:en"}, false, "fr_FR:en", "fr-FR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"} {
				t.Setenv(k, tc.env[k])
			}
			if got := parses(t); got == tc.broken {
				t.Fatalf("before: every locale parses = %v, want %v", got, !tc.broken)
			}
			if v, ok := messagesLanguage(os.Getenv); ok {
				os.Setenv("LANGUAGE", v)
			}
			if got := os.Getenv("LANGUAGE"); got != tc.wantLang {
				t.Errorf("LANGUAGE = %q, want %q", got, tc.wantLang)
			}
			if !parses(t) {
				t.Fatal("after: a locale still does not parse")
			}
			locs, _ := golocale.GetLocales()
			first := ""
			if len(locs) > 0 {
				first = locs[0]
			}
			if first != tc.wantFirst {
				t.Errorf("go-locale reads %q first, want %q", first, tc.wantFirst)
			}
		})
	}
}

// parses reports whether x/text parses every locale go-locale reads, as
// Fyne's lang package asks it to.
func parses(t *testing.T) bool {
	t.Helper()
	locs, err := golocale.GetLocales()
	if err != nil {
		t.Fatal(err)
	}
	loc, err := golocale.GetLocale()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range append(locs, loc) {
		if l == "" {
			continue
		}
		if _, err := language.Parse(l); err != nil {
			return false
		}
	}
	return true
}
