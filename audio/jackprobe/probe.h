// The real-time half of package jackprobe: two JACK clients whose process
// callbacks copy between JACK's port buffers and memory allocated when the
// probe opens. They never block or allocate.
#ifndef JACKPROBE_PROBE_H
#define JACKPROBE_PROBE_H

#include <stdint.h>
#include <jack/jack.h>

#define PROBE_MAX_PORTS 8
#define PROBE_MAX_XRUNS 4096

typedef struct probe {
	jack_client_t *player, *recorder;
	int nplay, nrec;
	jack_port_t *out[PROBE_MAX_PORTS], *in[PROBE_MAX_PORTS];
	// sig[i] is played into out[i]; played[i] keeps what went out (NaN
	// where the player missed a cycle).
	float *sig[PROBE_MAX_PORTS], *played[PROBE_MAX_PORTS];
	// rec[i] is what in[i] received (NaN where the recorder missed a
	// cycle).
	float *rec[PROBE_MAX_PORTS];
	uint32_t len;      // samples in every sig, played and rec buffer
	uint32_t start;    // frame time of sample 0; read once armed is set
	int armed;         // atomic
	int done_fd;       // written once when the last sample is recorded
	int done_sent;
	// xruns counts the server's xruns once armed; xrun_at holds when
	// (frames from start) for the first PROBE_MAX_XRUNS.
	int xruns; // atomic
	int32_t xrun_at[PROBE_MAX_XRUNS];
} probe;

// probe_open opens the two clients (NAME-play and NAME-rec) on the server
// (NULL: the default) and registers their ports; status gets JACK's
// status bits. It returns 0 or -1.
int probe_open(probe *p, const char *name, const char *server, int *status);

// probe_activate sets the callbacks and activates both clients.
int probe_activate(probe *p);

// probe_arm starts playing and recording from frame time start.
void probe_arm(probe *p, uint32_t start);

// probe_close deactivates and closes both clients; the buffers stay.
void probe_close(probe *p);

#endif
