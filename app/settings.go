package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Settings are what Duet remembers between runs, as JSON in the user's
// config folder. Zero fields mean "not chosen": the defaults apply.
type Settings struct {
	InputDevice  string       `json:"inputDevice,omitempty"`
	OutputDevice string       `json:"outputDevice,omitempty"`
	Buffer       int          `json:"buffer,omitempty"` // frames
	Server       string       `json:"server,omitempty"`
	Calibration  *Calibration `json:"calibration,omitempty"`
	// Name is the singer's display name.
	Name string `json:"name,omitempty"`
	// Frame is the Opus frame duration; 0 means the default.
	Frame time.Duration `json:"frameNs,omitempty"`
	// Codec is what to send, as ParseCodec reads it ("custom", "pcm",
	// "l16", "l24", "opus"); empty or "auto" lets the session choose.
	Codec string `json:"codec,omitempty"`
	// JitterBias leans the jitter buffer from tight (−1: least delay, more
	// dropouts) to safe (+1); 0 is balanced.
	JitterBias float64 `json:"jitterBias,omitempty"`
	// NTPServer is checked for this machine's clock offset ("host" or
	// "host:port"); empty means the default pool, "off" never asks.
	NTPServer string `json:"ntpServer,omitempty"`
	// Speakers: the singer uses loudspeakers, not headphones, so the echo
	// canceller runs.
	Speakers bool `json:"speakers,omitempty"`
	// RecordDir is where the host's takes go; empty means ~/Music/Duet.
	RecordDir string `json:"recordDir,omitempty"`
	// SetupDone: the first-run setup has been seen.
	SetupDone bool `json:"setupDone,omitempty"`
}

// Calibration is a measured device round trip (output to input), valid for
// the devices and buffer size it was measured with.
type Calibration struct {
	InputDevice  string        `json:"inputDevice"`
	OutputDevice string        `json:"outputDevice"`
	Buffer       int           `json:"buffer"`
	RoundTrip    time.Duration `json:"roundTripNs"`
	Confidence   float64       `json:"confidence"`
	Measured     time.Time     `json:"measured"`
}

// Matches reports whether the calibration was made with these devices and
// buffer size.
func (c *Calibration) Matches(input, output string, buffer int) bool {
	return c != nil && c.InputDevice == input && c.OutputDevice == output && c.Buffer == buffer
}

// SettingsPath is where settings live: duet/settings.json in the user's
// config folder (~/.config on Linux).
func SettingsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("settings: no config folder: %w", err)
	}
	return filepath.Join(dir, "duet", "settings.json"), nil
}

// LoadSettings reads the settings at path; a missing file is no settings.
func LoadSettings(path string) (Settings, error) {
	var s Settings
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return Settings{}, fmt.Errorf("settings: %s is damaged (%v); delete it to start afresh", path, err)
	}
	return s, nil
}

// Save writes the settings to path, replacing the file in one step so a
// crash never leaves half a file.
func (s Settings) Save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".settings-*.json")
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("settings: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return nil
}
