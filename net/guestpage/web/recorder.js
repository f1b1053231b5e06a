// An AudioWorklet that hands what it hears to the page, 128 samples at a
// time with the context time they are rendered at: lab.js's recorder.
class Recorder extends AudioWorkletProcessor {
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) this.port.postMessage({ t: currentTime, p: ch.slice() });
    return true;
  }
}
registerProcessor("duet-recorder", Recorder);
