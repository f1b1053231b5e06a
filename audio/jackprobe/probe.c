#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "probe.h"

static int play_process(jack_nframes_t n, void *arg) {
	probe *p = arg;
	int armed = __atomic_load_n(&p->armed, __ATOMIC_ACQUIRE);
	jack_nframes_t f0 = jack_last_frame_time(p->player);
	for (int i = 0; i < p->nplay; i++) {
		float *buf = jack_port_get_buffer(p->out[i], n);
		for (jack_nframes_t j = 0; j < n; j++) {
			int64_t d = armed ? (int32_t)(f0 + j - p->start) : -1;
			if (d >= 0 && d < p->len) {
				buf[j] = p->sig[i][d];
				p->played[i][d] = buf[j];
			} else {
				buf[j] = 0;
			}
		}
	}
	return 0;
}

static int rec_process(jack_nframes_t n, void *arg) {
	probe *p = arg;
	if (!__atomic_load_n(&p->armed, __ATOMIC_ACQUIRE)) {
		return 0;
	}
	jack_nframes_t f0 = jack_last_frame_time(p->recorder);
	int64_t last = -1;
	for (int i = 0; i < p->nrec; i++) {
		const float *buf = jack_port_get_buffer(p->in[i], n);
		for (jack_nframes_t j = 0; j < n; j++) {
			int64_t d = (int32_t)(f0 + j - p->start);
			if (d >= 0 && d < p->len) {
				p->rec[i][d] = buf[j];
				if (d > last) {
					last = d;
				}
			}
		}
	}
	if (last >= 0) {
		if (last + 1 == p->len && !p->done_sent) {
			p->done_sent = 1;
			// One byte into an empty pipe: it cannot block.
			ssize_t w = write(p->done_fd, "", 1);
			(void)w;
		}
	}
	return 0;
}

static int on_xrun(void *arg) {
	probe *p = arg;
	if (!__atomic_load_n(&p->armed, __ATOMIC_ACQUIRE)) {
		return 0;
	}
	int k = __atomic_fetch_add(&p->xruns, 1, __ATOMIC_ACQ_REL);
	if (k < PROBE_MAX_XRUNS) {
		p->xrun_at[k] = (int32_t)(jack_frame_time(p->recorder) - p->start);
	}
	return 0;
}

static jack_client_t *open_client(const char *name, const char *server, int *status) {
	jack_status_t st = 0;
	jack_client_t *c;
	if (server != NULL) {
		c = jack_client_open(name, JackNoStartServer | JackUseExactName | JackServerName, &st, server);
	} else {
		c = jack_client_open(name, JackNoStartServer | JackUseExactName, &st);
	}
	*status = (int)st;
	return c;
}

int probe_open(probe *p, const char *name, const char *server, int *status) {
	char buf[256];
	snprintf(buf, sizeof buf, "%s-play", name);
	p->player = open_client(buf, server, status);
	if (p->player == NULL) {
		return -1;
	}
	snprintf(buf, sizeof buf, "%s-rec", name);
	p->recorder = open_client(buf, server, status);
	if (p->recorder == NULL) {
		jack_client_close(p->player);
		p->player = NULL;
		return -1;
	}
	for (int i = 0; i < p->nplay; i++) {
		snprintf(buf, sizeof buf, "out_%d", i);
		p->out[i] = jack_port_register(p->player, buf, JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
		if (p->out[i] == NULL) {
			probe_close(p);
			return -1;
		}
	}
	for (int i = 0; i < p->nrec; i++) {
		snprintf(buf, sizeof buf, "in_%d", i);
		p->in[i] = jack_port_register(p->recorder, buf, JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
		if (p->in[i] == NULL) {
			probe_close(p);
			return -1;
		}
	}
	return 0;
}

int probe_activate(probe *p) {
	if (jack_set_process_callback(p->player, play_process, p) != 0 ||
	    jack_set_process_callback(p->recorder, rec_process, p) != 0 ||
	    jack_set_xrun_callback(p->recorder, on_xrun, p) != 0) {
		return -1;
	}
	if (jack_activate(p->player) != 0) {
		return -1;
	}
	if (jack_activate(p->recorder) != 0) {
		jack_deactivate(p->player);
		return -1;
	}
	return 0;
}

void probe_arm(probe *p, uint32_t start) {
	p->start = start;
	__atomic_store_n(&p->armed, 1, __ATOMIC_RELEASE);
}

void probe_close(probe *p) {
	if (p->player != NULL) {
		jack_deactivate(p->player);
		jack_client_close(p->player);
		p->player = NULL;
	}
	if (p->recorder != NULL) {
		jack_deactivate(p->recorder);
		jack_client_close(p->recorder);
		p->recorder = NULL;
	}
}
