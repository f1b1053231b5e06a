// Meters: the level of a stream, read from a WebAudio analyser.

// Meter reads the level of one MediaStream through ctx, in dBFS (RMS over
// the analyser's window, 2048 samples).
export class Meter {
  constructor(ctx, stream) {
    this.an = ctx.createAnalyser();
    this.an.fftSize = 2048;
    this.src = ctx.createMediaStreamSource(stream);
    this.src.connect(this.an); // not to the speakers: the meter only listens
    this.buf = new Float32Array(this.an.fftSize);
  }

  // db returns the level now, -Infinity for silence.
  db() {
    this.an.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    return 10 * Math.log10(sum / this.buf.length);
  }

  // tone returns the amplitude of the sine at hz in the window now (the
  // Goertzel algorithm through a Hann window, as audio/measure's Tone).
  tone(hz) {
    this.an.getFloatTimeDomainData(this.buf);
    const p = this.buf, w = (2 * Math.PI * hz) / this.an.context.sampleRate, c = 2 * Math.cos(w);
    let s1 = 0, s2 = 0, gain = 0;
    for (let i = 0; i < p.length; i++) {
      const win = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (p.length - 1));
      gain += win;
      const s0 = win * p[i] + c * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    return (2 * Math.sqrt(Math.max(s1 * s1 + s2 * s2 - c * s1 * s2, 0))) / gain;
  }

  close() {
    this.src.disconnect();
  }
}

// show puts a level in dBFS on a <meter> and its label, when it moved by
// a decibel or more: each change repaints, and a steady level needs none
// (headless Firefox stalls for seconds when it repaints ten times a second).
export function show(meter, label, db) {
  const v = Math.max(db, meter.min);
  if (Math.abs(v - meter.value) < 1 && label.textContent !== "") return;
  meter.value = v;
  label.textContent = Number.isFinite(db) ? db.toFixed(0) : "−∞";
}
