// Duet's guest page: joins the room in the page's address (/j/CODE) as
// the desktop app's guest does, with the browser's WebRTC.
//
// Test hook: with ?report=/PATH the page posts its state (JSON) to PATH on
// its own origin every quarter second, and does what the reply says
// ({"do": "leave" | "join" | "mute" | "unmute" | "tone", "hz": N}); with
// ?auto=1 it uses the microphone and joins without a click, as on
// headphones. The replies "record" and "sing" (lab.js) measure latency.

import { Rendezvous, errorWords, parseCode, socketURL } from "./signal.js";
import { safetyCode } from "./safety.js";
import { Meter, show } from "./meter.js";
import { Clock, Track } from "./track.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const code = parseCode(decodeURIComponent(location.pathname.split("/").pop() || ""));

// state is what the page shows, and what ?report posts.
const state = {
  phase: "setup", // setup, joining, waiting, connecting, connected, left, problem
  problem: "",
  code,
  status: "",
  relayed: false,
  partner: "",
  safety: "",
  latency: null, // ms by stage
  levels: { me: -Infinity, partner: -Infinity },
  muted: false,
  stats: null,
  tone: null,
  track: null,
  audio: "", // the AudioContext's state
  channels: {}, // the data channels' states and messages, for a test
};

let mic = null; // the microphone's MediaStream
let ctx = null; // the AudioContext the meters read through
let micMeter = null, partnerMeter = null;
let rv = null; // the rendezvous socket
let pc = null; // the peer connection
let control = null; // the control data channel
let token = "";
let iceServers = [];
let lastIn = null; // the inbound stats a second ago, for the latency
let clock = null; // the host's session clock against this page's
let track = null; // the backing track
let pinger = null, pingFastUntil = 0;
let remote = null; // the partner's stream

function problem(title, text, retry = false) {
  state.phase = "problem";
  state.problem = `${title}: ${text}`;
  for (const s of ["setup", "call", "left"]) $(s).hidden = true;
  $("problem").hidden = false;
  $("problem-title").textContent = title;
  $("problem-text").textContent = text;
  $("retry").hidden = !retry;
}

function phase(p, status = "", detail = "") {
  state.phase = p;
  state.status = status;
  $("setup").hidden = p !== "setup";
  $("call").hidden = !["joining", "waiting", "connecting", "connected"].includes(p);
  $("left").hidden = p !== "left";
  $("problem").hidden = true;
  if (status) $("status").textContent = status;
  $("status-detail").textContent = detail;
}

// supported says what this browser lacks for a duet, or "".
function lacking() {
  if (!window.RTCPeerConnection) return "WebRTC";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return "microphone access";
  if (!window.AudioContext) return "Web Audio";
  if (!window.crypto || !crypto.subtle) return "Web Crypto";
  return "";
}

function speakers() {
  return document.querySelector('input[name="ears"]:checked').value === "speakers";
}

// startMic asks for the microphone, with the browser's voice processing
// off (it bends a singing voice) unless the singer is on speakers, where
// its echo canceller keeps the partner from hearing themselves.
async function startMic() {
  const ec = speakers();
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: ec, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
  } catch (e) {
    if (e.name === "NotAllowedError" || e.name === "SecurityError") {
      problem("The microphone is blocked",
        "The browser did not let this page use your microphone, so your partner could not hear you. " +
        "Allow the microphone (the icon in the address bar) and try again.", true);
    } else if (e.name === "NotFoundError" || e.name === "OverconstrainedError") {
      problem("No microphone found", "Plug in a microphone (or a headset) and try again.", true);
    } else if (e.name === "NotReadableError") {
      problem("The microphone is busy", "Another program holds your microphone. Close it and try again.", true);
    } else {
      problem("The microphone did not start", String(e), true);
    }
    return false;
  }
  ctx = new AudioContext({ latencyHint: "interactive", sampleRate: 48000 }); // Duet's rate: no resampling of the track
  ctx.resume().catch(() => {});
  micMeter = new Meter(ctx, mic);
  clock = new Clock();
  track = new Track(ctx, clock, sendControl, showTrack);
  $("join").disabled = false;
  $("mic-start").hidden = true;
  return true;
}

async function join() {
  if (!mic && !(await startMic())) return;
  // The partner's voice, the track and the meters need the audio running;
  // a browser slow to start it (its sound server busy) gets a moment.
  if (ctx.state !== "running") phase("joining", "Starting the sound…");
  for (let i = 0; i < 100 && ctx.state !== "running"; i++) {
    ctx.resume().catch(() => {});
    await new Promise((r) => setTimeout(r, 100));
  }
  state.audio = ctx.state;
  if (ctx.state !== "running") {
    problem("The sound does not start",
      "Your browser could not start playing sound, so you would not hear your partner. Check your speakers or headphones and try again.", true);
    return;
  }
  phase("joining", "Joining the room…");
  rv = new Rendezvous(socketURL(location));
  rv.onmessage = onSignal;
  rv.onclose = () => {
    rv = null;
    if (state.phase === "joining" || state.phase === "waiting") {
      problem("The rendezvous server went away", "Check your connection and try again.", true);
    } else if (state.phase === "connected") {
      $("status-detail").textContent = "The rendezvous server went away; the duet goes on.";
    }
  };
  try {
    await rv.opened;
  } catch {
    problem("The rendezvous server cannot be reached", "Check your connection and try again.", true);
    return;
  }
  rv.send("join", { room: code });
}

async function onSignal(m) {
  try {
    switch (m.type) {
      case "joined":
        token = m.token || "";
        iceServers = m.iceServers || [];
        phase("waiting", "Waiting for your partner…", "Your partner's app calls you in a moment.");
        break;
      case "offer":
        try {
          await answer(m.sdp);
        } catch (e) {
          // Tell the host at once, rather than let it wait for a
          // connection that will not come.
          rv.send("hangup", { error: { code: "negotiation-failed", message: "the browser could not take the offer: " + e } });
          hangUp();
          problem("The call could not be set up", `Your browser could not take your partner's call (${e}). Try another browser: a current Chrome, Edge, Firefox or Safari.`, true);
        }
        break;
      case "hangup":
        hangUp();
        problem("The call could not be set up",
          `Your partner's app could not set up the call (${(m.error && m.error.message) || "no reason given"}). Try again, or try another browser.`, true);
        break;
      case "candidate":
        if (pc && m.candidate && m.candidate.candidate) await pc.addIceCandidate(m.candidate);
        break;
      case "peer-left":
        hangUp();
        leftPage("Your partner ended the duet", "The room is closed. Ask your partner for a new link to sing again.", false);
        break;
      case "error": {
        const e = m.error || {};
        hangUp();
        problem("Could not join", errorWords[e.code] || e.message || "The rendezvous server refused.", e.code !== "room-not-found" && e.code !== "room-expired");
        break;
      }
    }
  } catch (e) {
    problem("The call could not be set up", String(e), true);
  }
}

// answer takes the host's offer and answers with the microphone.
async function answer(sdp) {
  if (pc) pc.close(); // a new offer: the host starts over
  phase("connecting", "Connecting…");
  pc = new RTCPeerConnection({ iceServers });
  pc.onicecandidate = (e) => {
    if (e.candidate && rv) rv.send("candidate", { candidate: e.candidate.toJSON() });
  };
  pc.ontrack = (e) => {
    const stream = e.streams[0] || new MediaStream([e.track]);
    remote = stream;
    const el = $("partner");
    el.srcObject = stream; // plays through the browser's WebRTC audio path
    el.volume = Number($("volume").value);
    el.play().catch(() => {});
    if (partnerMeter) partnerMeter.close();
    partnerMeter = new Meter(ctx, stream);
  };
  pc.ondatachannel = (e) => {
    const dc = e.channel;
    const c = (state.channels[dc.label] = { state: dc.readyState, messages: 0 });
    dc.addEventListener("open", () => (c.state = "open"));
    dc.addEventListener("close", () => (c.state = "closed"));
    dc.addEventListener("message", () => c.messages++);
    if (dc.label === "control") setControl(dc);
    else if (dc.label === "clock") startClock(dc);
    else if (dc.label === "file") {
      dc.binaryType = "arraybuffer";
      dc.onmessage = (m) => track.onFile(m.data);
    }
  };
  pc.onconnectionstatechange = () => {
    switch (pc.connectionState) {
      case "connected":
        phase("connected", state.partner ? `Connected to ${state.partner}` : "Connected", state.relayed ? "through a relay" : "directly");
        break;
      case "disconnected":
        phase("connecting", "Reconnecting…", "The connection dropped; it comes back by itself if it can.");
        break;
      case "failed":
        problem("The connection failed", "Your browser and your partner's app could not reach each other. Try again, or try another network.", true);
        break;
    }
  };
  await pc.setRemoteDescription({ type: "offer", sdp });
  for (const t of mic.getAudioTracks()) pc.addTrack(t, mic);
  await pc.setLocalDescription(await pc.createAnswer());
  rv.send("answer", { sdp: pc.localDescription.sdp });
  state.safety = (await safetyCode(pc.localDescription.sdp, pc.remoteDescription.sdp)) || "";
  $("safety").textContent = state.safety;
  $("safety-box").hidden = !state.safety;
}

// setControl reads the host's control messages (JSON, as text or bytes).
function setControl(dc) {
  control = dc;
  dc.binaryType = "arraybuffer";
  dc.onopen = () => dc.send(JSON.stringify({ type: "hello", name: $("name").value.trim() || "Guest" }));
  dc.onmessage = (e) => {
    let m;
    try {
      m = JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data));
    } catch {
      return;
    }
    if (m.type === "hello" && typeof m.name === "string") {
      state.partner = m.name.slice(0, 40);
      $("partner-label").textContent = state.partner;
      if (state.phase === "connected") $("status").textContent = `Connected to ${state.partner}`;
    } else if (typeof m.type === "string" && m.type.startsWith("track-")) {
      track.onControl(m);
    } else if (m.type === "bye") {
      hangUp();
      leftPage("Your partner left", "They may come back: join again when they do.", true);
    }
  };
}

function hangUp() {
  if (control && control.readyState === "open") control.send(JSON.stringify({ type: "bye" }));
  control = null;
  if (pc) pc.close();
  pc = null;
  if (partnerMeter) partnerMeter.close();
  partnerMeter = null;
  $("partner").srcObject = null;
  if (rv) {
    rv.send("bye");
    rv.close();
  }
  rv = null;
  state.safety = "";
  state.latency = null;
  lastIn = null;
  clearInterval(pinger);
  pinger = null;
  if (clock) clock.samples = [];
  if (track) {
    track.stop(); // the song stays: a rejoin need not fetch it again
    track.gen = -1; // and plays the host's schedule again
  }
}

function sendControl(m) {
  if (control && control.readyState === "open") control.send(JSON.stringify(m));
}

// startClock pings the host on the clock channel: every 20 ms for the
// first 10 s of a connection, then every 100 ms (as the desktop guest).
function startClock(dc) {
  clock.use(dc);
  pingFastUntil = performance.now() + 10000;
  clearInterval(pinger);
  let n = 0;
  pinger = setInterval(() => {
    if (performance.now() < pingFastUntil || n++ % 5 === 0) clock.ping();
  }, 20);
}

function showTrack() {
  const t = track;
  $("track-box").hidden = !t.name;
  $("track-name").textContent = t.name;
  let text = "";
  if (t.error) text = "could not be used: " + t.error;
  else if (!t.buffer) text = `arriving: ${Math.floor((100 * t.got) / Math.max(t.size, 1))} %`;
  else if (t.anchor) text = "playing";
  else text = "here, ready to play";
  $("track-status").textContent = text;
}

function leftPage(title, text, again) {
  phase("left");
  $("left-title").textContent = title;
  $("left-text").textContent = text;
  $("rejoin").hidden = !again;
}

function leave() {
  hangUp();
  leftPage("You left the duet", "Your partner's room stays open for a while: you can join again.", true);
}

function setMuted(m) {
  state.muted = m;
  for (const t of mic.getAudioTracks()) t.enabled = !m;
  $("mute").setAttribute("aria-pressed", String(m));
  $("mute").textContent = m ? "Unmute" : "Mute";
}

// measure reads the connection's statistics: the latency by stage from
// the partner's mouth to this page's speaker, as far as a browser tells.
async function measure() {
  if (!pc) return;
  const r = await pc.getStats();
  let inb = null, pair = null;
  const byId = new Map();
  r.forEach((s) => {
    byId.set(s.id, s);
    if (s.type === "inbound-rtp" && s.kind === "audio") inb = s;
  });
  r.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
  });
  if (!pair) r.forEach((s) => { if (s.type === "candidate-pair" && (s.selected || s.nominated) && s.state === "succeeded") pair = s; });
  if (pair) {
    const l = byId.get(pair.localCandidateId), rem = byId.get(pair.remoteCandidateId);
    state.relayed = (l && l.candidateType === "relay") || (rem && rem.candidateType === "relay") || false;
  }
  if (!inb) return;
  state.stats = {
    packetsReceived: inb.packetsReceived, packetsLost: inb.packetsLost,
    concealedSamples: inb.concealedSamples, totalSamplesReceived: inb.totalSamplesReceived,
  };
  const lat = {};
  if (lastIn && inb.packetsReceived > lastIn.packetsReceived) {
    const samples = (inb.totalSamplesReceived - lastIn.totalSamplesReceived) / (inb.packetsReceived - lastIn.packetsReceived);
    lat.codec = samples / 48 + 2.5; // a packet, and Opus's look-ahead
    const n = inb.jitterBufferEmittedCount - lastIn.jitterBufferEmittedCount;
    if (n > 0) lat.jitter = (1000 * (inb.jitterBufferDelay - lastIn.jitterBufferDelay)) / n;
  }
  if (pair && pair.currentRoundTripTime !== undefined) lat.network = (1000 * pair.currentRoundTripTime) / 2;
  if (ctx) lat.device = 1000 * ((ctx.baseLatency || 0) + (ctx.outputLatency || 0));
  lastIn = inb;
  if (lat.codec === undefined) return;
  lat.total = (lat.codec || 0) + (lat.network || 0) + (lat.jitter || 0) + (lat.device || 0);
  state.latency = lat;
  const ms = (v) => (v === undefined ? "–" : v.toFixed(1) + " ms");
  $("lat-codec").textContent = ms(lat.codec);
  $("lat-network").textContent = ms(lat.network);
  $("lat-jitter").textContent = ms(lat.jitter);
  $("lat-device").textContent = ms(lat.device);
  $("lat-total").textContent = ms(lat.total);
  $("light").className = "light " + (lat.total <= 25 ? "green" : lat.total <= 40 ? "amber" : "red");
  $("latency").hidden = false;
  if (state.phase === "connected") $("status-detail").textContent = state.relayed ? "through a relay" : "directly";
}

function meters() {
  if (micMeter) {
    state.levels.me = state.muted ? -Infinity : micMeter.db();
    show($("mic-level"), $("mic-db"), state.levels.me);
    show($("me-level"), $("me-db"), state.levels.me);
  }
  if (partnerMeter) {
    state.levels.partner = partnerMeter.db();
    show($("partner-level"), $("partner-db"), state.levels.partner);
  }
}

// report posts the state to the test that asked (?report) and does what
// it answers.
async function report(path) {
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    if (track) state.track = track.report();
    let cmd = {};
    try {
      const res = await fetch(path, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(state, (k, v) => (v === -Infinity ? -999 : v)),
      });
      cmd = await res.json();
    } catch {
      continue;
    }
    switch (cmd.do) {
      case "leave": leave(); break;
      case "join": join(); break;
      case "mute": setMuted(true); break;
      case "unmute": setMuted(false); break;
      case "record": // measurement hooks (lab.js), loaded only here
        import("./lab.js").then((lab) => lab.record(ctx, remote, cmd.ms, cmd.path)).catch((e) => (state.labError = String(e)));
        break;
      case "sing":
        import("./lab.js")
          .then(async (lab) => {
            const sung = await lab.sing(ctx, pc, cmd.url);
            [state.sungCtx, state.sungAtMS] = [sung.ctx, sung.wall];
          })
          .catch((e) => (state.labError = String(e)));
        break;
      case "tone": {
        // The partner's sine at hz in 8 windows a tenth of a second apart.
        const amps = [];
        for (let i = 0; i < 8 && partnerMeter; i++) {
          amps.push(partnerMeter.tone(cmd.hz));
          await new Promise((r) => setTimeout(r, 100));
        }
        state.tone = { hz: cmd.hz, amps };
        break;
      }
    }
  }
}

function main() {
  $("code").textContent = code || "?";
  const path = params.get("report");
  if (path && path.startsWith("/") && !path.startsWith("//")) report(path);
  const lack = lacking();
  if (lack) {
    problem("This browser cannot join a duet", `It lacks ${lack}. Open the link in a current Chrome, Edge, Firefox or Safari.`);
    return;
  }
  if (!window.isSecureContext) {
    problem("This page needs a secure connection",
      "Browsers give the microphone only to pages served over HTTPS. Ask the host to run the rendezvous server with a certificate (duet serve -tls-cert … -tls-key …).");
    return;
  }
  if (!code) {
    problem("This is not a room link", "The link should end in a room code like K7QM-3XRT. Ask your partner to send it again.");
    return;
  }
  phase("setup");
  $("mic-start").onclick = startMic;
  $("join").onclick = join;
  $("retry").onclick = () => location.reload();
  $("rejoin").onclick = join;
  $("leave").onclick = leave;
  $("mute").onclick = () => setMuted(!state.muted);
  $("volume").oninput = () => { $("partner").volume = Number($("volume").value); };
  for (const r of document.querySelectorAll('input[name="ears"]')) {
    r.onchange = () => {
      for (const t of mic ? mic.getAudioTracks() : []) t.applyConstraints({ echoCancellation: speakers() }).catch(() => {});
    };
  }
  setInterval(() => {
    if (ctx) {
      state.audio = ctx.state;
      // A context the browser could not start (its sound server was
      // slow, say) is asked again.
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
    }
    measure().catch(() => {});
    if (track && track.name) showTrack();
  }, 1000);
  setInterval(meters, 100); // ten times a second: enough to read, and few repaints
  if (params.get("auto") === "1") join();
}

main();
