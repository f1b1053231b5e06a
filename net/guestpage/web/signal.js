// The rendezvous protocol as net/signal speaks it: one JSON object per
// WebSocket text message, each carrying the protocol version in "v".

export const VERSION = 1;

// The alphabet of room codes: Crockford's base32.
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// parseCode reads a room code as signal.ParseCode does (any case, with or
// without the dash and spaces, I and L as 1, O as 0) and returns it as
// "K7QM-3XRT", or null if it is not one.
export function parseCode(s) {
  let out = "";
  for (let c of s.toUpperCase()) {
    if (c === "-" || c === " ") continue;
    if (c === "I" || c === "L") c = "1";
    if (c === "O") c = "0";
    if (!ALPHABET.includes(c)) return null;
    out += c;
  }
  return out.length === 8 ? out.slice(0, 4) + "-" + out.slice(4) : null;
}

// Rendezvous is one socket to the server. onmessage gets every message
// the server sends, parsed; onclose is told once when the socket ends.
export class Rendezvous {
  constructor(url) {
    this.ws = new WebSocket(url);
    this.onmessage = () => {};
    this.onclose = () => {};
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error("could not reach the rendezvous server"));
    });
    this.ws.onmessage = (ev) => {
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return; // the server sends JSON; anything else is not for us
      }
      this.onmessage(m);
    };
    this.ws.onclose = (ev) => this.onclose(ev);
  }

  // send sends one message of type with fields.
  send(type, fields = {}) {
    if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ v: VERSION, type, ...fields }));
    }
  }

  close() {
    this.ws.onclose = null;
    this.ws.close(1000);
  }
}

// socketURL returns the server's socket on the page's own origin.
export function socketURL(loc) {
  return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + "/ws";
}

// Friendly words for the server's error codes (signal's Err* values);
// the server's own message stands for the others.
export const errorWords = {
  "room-not-found": "This room does not exist, or it has ended. Ask your partner for a new link.",
  "room-expired": "This room has expired. Ask your partner to host again and send you the new link.",
  "room-full": "Someone else is already singing in this room. A duet has two singers.",
  "rate-limited": "Too many attempts from here. Wait a minute and try again.",
  "peer-away": "Your partner is reconnecting. Try again in a moment.",
};
