// Package assets holds what Duet ships besides code: the app icon (also
// named in FyneApp.toml for packaging).
package assets

import _ "embed"

//go:embed icon.png
var icon []byte

// Icon returns the app icon, a 512×512 PNG. Callers must not modify it.
func Icon() []byte { return icon }
