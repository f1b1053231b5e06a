package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/audio/codec"
)

func TestSettingsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "duet", "settings.json")
	s, err := LoadSettings(path)
	if err != nil || s.InputDevice != "" || s.Calibration != nil {
		t.Fatalf("missing file: %+v, %v; want empty settings", s, err)
	}
	s = Settings{InputDevice: "USB", Buffer: 128, Codec: "l24", Calibration: &Calibration{
		InputDevice: "USB", OutputDevice: "USB", Buffer: 128,
		RoundTrip: 7 * time.Millisecond, Confidence: 0.9, Measured: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
	}}
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSettings(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.InputDevice != "USB" || got.Buffer != 128 || got.Codec != "l24" || *got.Calibration != *s.Calibration {
		t.Fatalf("loaded %+v, want %+v", got, s)
	}
	if !got.Calibration.Matches("USB", "USB", 128) || got.Calibration.Matches("USB", "USB", 64) {
		t.Fatal("Matches is wrong about the buffer size")
	}
}

func TestSettingsDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	os.WriteFile(path, []byte("{not json"), 0o644)
	if _, err := LoadSettings(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("err = %v, want a damaged-file error", err)
	}
}

func TestParseCodec(t *testing.T) {
	for in, want := range map[string]codec.Kind{
		"": Auto, "auto": Auto, " AUTO ": Auto, "custom": codec.OpusCustom, "pcm": codec.L16,
		"l16": codec.L16, "L24": codec.L24, "opus": codec.Opus,
	} {
		got, err := ParseCodec(in)
		if err != nil || got != want {
			t.Errorf("ParseCodec(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseCodec(CodecName(got)); err != nil || back != got {
			t.Errorf("CodecName(%v) = %q does not read back", got, CodecName(got))
		}
	}
	if _, err := ParseCodec("mp3"); err == nil || !strings.Contains(err.Error(), "mp3") {
		t.Errorf("ParseCodec(mp3) = %v", err)
	}
}
