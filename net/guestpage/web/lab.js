// Measurement hooks of the guest page, loaded only with ?report (tests
// and duetlab): record what the page hears, and sing a given voice instead
// of the microphone, each with its wall-clock time (performance.timeOrigin
// based: on one machine the same clock as the host's), for mouth-to-ear
// latency.

// wallOf returns the wall-clock ms at which context time c is heard at
// the speaker, as the browser tells (getOutputTimestamp).
function wallOf(ctx, c) {
  const ts = ctx.getOutputTimestamp();
  return performance.timeOrigin + ts.performanceTime + (c - ts.contextTime) * 1000;
}

// record posts ms of the partner's voice (as WebAudio gets it) to path, as
// 32-bit float samples at the context's rate, with the wall-clock time at
// which the first would be heard.
export async function record(ctx, stream, ms, path) {
  await ctx.audioWorklet.addModule("/j/static/recorder.js");
  const node = new AudioWorkletNode(ctx, "duet-recorder", { numberOfOutputs: 1 });
  const src = ctx.createMediaStreamSource(stream);
  src.connect(node);
  node.connect(ctx.destination); // pulled by the graph; it outputs silence
  const chunks = [];
  let start = null;
  await new Promise((resolve) => {
    node.port.onmessage = (e) => {
      if (start === null) start = wallOf(ctx, e.data.t);
      chunks.push(e.data.p);
    };
    setTimeout(resolve, ms);
  });
  src.disconnect();
  node.disconnect();
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const all = new Float32Array(n);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream", "X-Start-Wall-MS": String(start), "X-Rate": String(ctx.sampleRate) },
    body: all.buffer,
  });
}

// sing fetches a WAV file and sends it instead of the microphone, starting
// a fifth of a second from now; it returns the wall-clock time at which its
// first sample is rendered into the call (its "mouth"), and the context
// time it starts at.
export async function sing(ctx, pc, url) {
  const buf = await ctx.decodeAudioData(await (await fetch(url)).arrayBuffer());
  const dest = ctx.createMediaStreamDestination();
  const src = ctx.createBufferSource();
  src.buffer = buf;
  src.connect(dest);
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "audio");
  await sender.replaceTrack(dest.stream.getAudioTracks()[0]);
  const at = ctx.currentTime + 0.2;
  const wall = performance.timeOrigin + performance.now() + (at - ctx.currentTime) * 1000;
  src.start(at);
  return { wall, ctx: at };
}
