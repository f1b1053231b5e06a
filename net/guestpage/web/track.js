// The backing track in the browser, as the desktop guest takes it
// (app/track.go): the host offers it on the control channel, this page
// asks for it from the start (a page keeps no cache), the host sends it
// on the file channel in chunks (an 8-byte big-endian offset, then the
// bytes), the page checks its SHA-256, decodes it with WebAudio and says
// it is ready. The host then tells its schedule (the song starts at track
// position Pos at instant At of its session clock, CountIn beats of Beat
// samples after the clicks begin) and, four times a second, where its
// player is; the page maps that onto its AudioContext through the clock
// estimate (Clock) and getOutputTimestamp, and follows: a jump when it is
// more than maxSkew off, else a playback rate at most 0.1 % off.

const RATE = 48000; // the host's positions are 48 kHz samples
const maxSkew = 0.02; // seconds off before the track jumps
const maxRateOffset = 0.001; // 1.7 cents: no singer hears it
const steerOver = 2; // seconds to close a gap in

// perfNS is this page's clock in nanoseconds (the host's is its session
// clock, also in ns).
export const perfNS = () => performance.now() * 1e6;

// Clock estimates the host's session clock against perfNS from NTP-style
// pings on the clock channel: a type byte, then big-endian int64 times
// (ping: t1; pong: t1, t2, t3), as net/clock's wire format. The offset is
// read from the floors of the two one-way delays over the last samples
// (queueing only adds delay), as net/clock's estimator does.
export class Clock {
  constructor() {
    this.samples = []; // {t1, t2, t3, t4}
    this.dc = null;
  }

  use(dc) {
    this.dc = dc;
    dc.binaryType = "arraybuffer";
    dc.onmessage = (e) => this.pong(e.data);
  }

  ping() {
    if (!this.dc || this.dc.readyState !== "open") return;
    const b = new DataView(new ArrayBuffer(9));
    b.setUint8(0, 1);
    b.setBigInt64(1, BigInt(Math.round(perfNS())));
    this.dc.send(b.buffer);
  }

  pong(data) {
    const t4 = perfNS();
    if (!(data instanceof ArrayBuffer) || data.byteLength !== 25) return;
    const b = new DataView(data);
    if (b.getUint8(0) !== 2) return;
    const [t1, t2, t3] = [1, 9, 17].map((i) => Number(b.getBigInt64(i)));
    if (t4 < t1 || t3 < t2) return;
    this.samples.push({ t1, t2, t3, t4 });
    if (this.samples.length > 300) this.samples.shift();
  }

  // offset returns the host's clock minus this page's, in ns, or null
  // before the first pong.
  offset() {
    if (this.samples.length === 0) return null;
    let up = Infinity, down = Infinity; // t2 − t1 = delay + offset; t4 − t3 = delay − offset
    for (const s of this.samples) {
      up = Math.min(up, s.t2 - s.t1);
      down = Math.min(down, s.t4 - s.t3);
    }
    return (up - down) / 2;
  }

  // rtt returns the fastest round trip, in ns.
  rtt() {
    let r = Infinity;
    for (const s of this.samples) r = Math.min(r, s.t4 - s.t1 - (s.t3 - s.t2));
    return r;
  }
}

// SpeakerClock maps this page's clock (performance.now, ms) onto the
// context time heard at the speaker. getOutputTimestamp tells it, but
// Firefox's answers scatter over 30 ms in steps of its render quanta and
// its millisecond-clamped timers (its context clock seemed to run 0.5-3.6 %
// off the wall's between answers a quarter second apart): the map takes the
// median offset of the last six seconds' answers. Chromium's agree to a
// fraction of a millisecond.
class SpeakerClock {
  constructor(ctx) {
    this.ctx = ctx;
    this.offsets = []; // contextTime − performanceTime, seconds
  }

  sample() {
    const ts = this.ctx.getOutputTimestamp();
    if (!(ts.performanceTime > 0)) return; // not playing yet
    this.offsets.push(ts.contextTime - ts.performanceTime / 1000);
    if (this.offsets.length > 24) this.offsets.shift();
  }

  // at returns the context time heard at the speaker at page time ms, or
  // null before the speaker plays.
  at(ms) {
    this.sample();
    if (this.offsets.length === 0) return null;
    const sorted = [...this.offsets].sort((a, b) => a - b);
    return ms / 1000 + sorted[sorted.length >> 1];
  }
}

// Track is the guest's side of the backing track. send sends a control
// message; status is told whenever what to show changes.
export class Track {
  constructor(ctx, clock, send, status) {
    Object.assign(this, { ctx, clock, send, status });
    this.speaker = new SpeakerClock(ctx);
    this.reset();
  }

  reset() {
    this.stop();
    Object.assign(this, {
      name: "", size: 0, got: 0, digest: "", data: null, buffer: null, error: "",
      sched: null, snap: null, gen: -1, rate: 1, jumps: 0, skew: null, farBefore: false,
    });
  }

  // onControl takes the host's track messages.
  onControl(m) {
    if (m.type === "track-offer") this.offer(m);
    else if (m.type === "track-sync" && m.sched && m.snap) this.sync(m.sched, m.snap);
  }

  offer(m) {
    if (m.digest === this.digest && (this.buffer || this.data)) {
      // The same song: have it, or have it coming.
      this.send({ type: "track-want", offset: this.buffer ? this.size : this.got });
      if (this.buffer) this.send({ type: "track-ready" });
      return;
    }
    if (!(m.size > 0 && m.size <= 256 << 20) || !/^[0-9a-f]{64}$/.test(m.digest || "")) {
      this.send({ type: "track-error", text: "the offer made no sense" });
      return;
    }
    this.reset();
    Object.assign(this, { name: String(m.name || "track").slice(0, 100), size: m.size, digest: m.digest });
    this.data = new Uint8Array(m.size);
    this.send({ type: "track-want", offset: 0 });
    this.status();
  }

  // onFile takes a chunk from the file channel.
  onFile(buf) {
    if (!this.data || !(buf instanceof ArrayBuffer) || buf.byteLength < 8) return;
    const off = Number(new DataView(buf).getBigUint64(0));
    const chunk = new Uint8Array(buf, 8);
    if (off !== this.got || off + chunk.length > this.size) return; // stale, or beyond the offer
    this.data.set(chunk, off);
    this.got += chunk.length;
    if (this.got === this.size) this.load();
    this.status();
  }

  async load() {
    const data = this.data;
    const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    const hex = Array.from(sum, (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex !== this.digest) return this.fail("it arrived damaged");
    try {
      // decodeAudioData takes (and detaches) its buffer: a copy.
      this.buffer = await this.ctx.decodeAudioData(data.slice().buffer);
    } catch (e) {
      return this.fail("this browser cannot decode it (" + (e.message || e.name) + ")");
    }
    this.data = null;
    this.send({ type: "track-ready" });
    this.status();
    this.apply();
  }

  fail(text) {
    this.error = text;
    this.data = null;
    this.send({ type: "track-error", text });
    this.status();
  }

  sync(sched, snap) {
    this.sched = sched;
    if (snap.Gen === sched.Gen) this.snap = snap;
    this.apply();
    this.follow();
  }

  // ctxTime returns the AudioContext time at which the host's session
  // clock reads hostNS at this page's speaker, or null without a clock.
  ctxTime(hostNS) {
    const off = this.clock.offset();
    if (off === null) return null;
    return this.speaker.at((hostNS - off) / 1e6);
  }

  // apply puts the host's latest schedule on the speaker.
  apply() {
    const s = this.sched;
    const at = s && this.ctxTime(s.At); // when Pos plays
    if (!s || s.Gen === this.gen || !this.buffer || at === null) return;
    this.gen = s.Gen;
    this.stop();
    if (!s.Playing) return this.status();
    this.clicks(s, at);
    this.start(at, s.Pos / RATE);
    this.status();
  }

  // start plays the track from pos (seconds) at context time at (or from
  // where it is by now, if that has passed).
  start(at, pos) {
    this.stopSource();
    const now = this.ctx.currentTime;
    if (pos < 0) {
      at -= pos; // the song begins later
      pos = 0;
    }
    if (at < now) {
      pos += now - at;
      at = now;
    }
    if (pos >= this.buffer.duration) return;
    const src = this.ctx.createBufferSource();
    src.buffer = this.buffer;
    src.connect(this.ctx.destination);
    src.start(at, pos);
    this.src = src;
    this.anchor = { at, pos };
    this.rate = 1;
  }

  // stop silences the track and the count-in.
  stop() {
    for (const n of this.nodes || []) {
      try {
        n.stop();
      } catch {} // not started yet
      n.disconnect();
    }
    this.nodes = [];
    this.stopSource();
  }

  stopSource() {
    if (this.src) {
      try {
        this.src.stop();
      } catch {}
      this.src.disconnect();
    }
    this.src = null;
    this.anchor = null;
  }

  // clicks schedules the count-in: CountIn beats before at, the first
  // higher, as audio/track's player clicks.
  clicks(s, at) {
    const beat = s.Beat / RATE;
    for (let k = s.CountIn; k >= 1; k--) {
      const t = at - k * beat;
      if (t < this.ctx.currentTime) continue;
      const osc = this.ctx.createOscillator(), g = this.ctx.createGain();
      osc.frequency.value = k === s.CountIn ? 2000 : 1500;
      g.gain.setValueAtTime(0.5, t);
      g.gain.setTargetAtTime(0, t, 0.006);
      osc.connect(g).connect(this.ctx.destination);
      osc.start(t);
      osc.stop(t + 0.05);
      this.nodes.push(osc);
    }
  }

  // position returns the track position (seconds) at context time c.
  position(c) {
    if (!this.anchor) return null;
    return this.anchor.pos + (c - this.anchor.at) * this.rate;
  }

  // follow compares where this page's track is with where the host's is
  // and steers: a jump when far off, else the rate.
  follow() {
    const snap = this.snap;
    if (!this.anchor || !snap || !snap.Valid || !snap.Playing || snap.Gen !== this.gen) return;
    const now = this.speaker.at(performance.now());
    const hostAt = this.ctxTime(snap.At);
    if (now === null || hostAt === null || now < this.anchor.at) return;
    const hostPos = snap.Pos / RATE + (now - hostAt); // the host plays at rate 1
    const err = this.position(now) - hostPos;
    this.skew = err;
    // Jump only when two syncs in a row say so: one late timestamp on a
    // busy machine must not cost a jump.
    const far = Math.abs(err) > maxSkew;
    if (far && this.farBefore) {
      this.jumps++;
      this.farBefore = false;
      this.start(now + 0.05, hostPos + 0.05);
      return;
    }
    this.farBefore = far;
    const rate = 1 - Math.max(-maxRateOffset, Math.min(maxRateOffset, err / steerOver));
    this.anchor = { at: now, pos: this.position(now) };
    this.rate = rate;
    this.src.playbackRate.setValueAtTime(rate, this.ctx.currentTime);
  }

  // report is what the page posts about the track: where it plays at the
  // speaker now (wall-clock ms, for a test on the same machine to compare
  // with the host's), and the host's schedule.
  report() {
    const ts = this.ctx.getOutputTimestamp();
    const pos = this.position(ts.contextTime);
    return {
      name: this.name, size: this.size, got: this.got, ready: !!this.buffer, error: this.error,
      playing: !!this.anchor, sched: this.sched, jumps: this.jumps,
      skewMS: this.skew === null ? null : this.skew * 1000, rate: this.rate,
      wallMS: performance.timeOrigin + ts.performanceTime, ctxTime: ts.contextTime, pos: pos === null ? null : pos * RATE,
      clockOffsetNS: this.clock.offset(), clockRTTNS: this.clock.rtt(),
    };
  }
}
