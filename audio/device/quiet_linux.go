package device

/*
#cgo pkg-config: alsa jack
#include <alsa/asoundlib.h>
#include <jack/jack.h>

// ALSA and JACK print their probing (dozens of "cannot find card" lines on
// a machine without a sound card, "cannot connect to server" without JACK)
// straight to stderr. PortAudio's answers say all a singer needs.
static void duet_alsa_quiet(const char *file, int line, const char *fn, int err, const char *fmt, ...) {}
static void duet_jack_quiet(const char *msg) {}
static void duet_quiet(void) {
	snd_lib_error_set_handler(duet_alsa_quiet);
	jack_set_error_function(duet_jack_quiet);
	jack_set_info_function(duet_jack_quiet);
}
*/
import "C"

// quietDrivers silences ALSA's and JACK's own stderr chatter.
func quietDrivers() { C.duet_quiet() }
