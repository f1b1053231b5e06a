// The safety code, as net/peer's SafetyCode derives it: six digits from
// both sides' DTLS certificate fingerprints, the same on both screens only
// if each side talks to the other's certificate.

// fingerprint returns the first a=fingerprint value of an SDP, in upper
// case, or null.
export function fingerprint(sdp) {
  for (const line of sdp.split(/\r?\n/)) {
    const t = line.trim();
    if (t.startsWith("a=fingerprint:")) return t.slice("a=fingerprint:".length).trim().toUpperCase();
  }
  return null;
}

// safetyCode returns "123 456" for two session descriptions, or null if
// either has no fingerprint.
export async function safetyCode(localSDP, remoteSDP) {
  let a = fingerprint(localSDP), b = fingerprint(remoteSDP);
  if (a === null || b === null) return null;
  if (a > b) [a, b] = [b, a];
  const sum = await crypto.subtle.digest("SHA-256", new TextEncoder().encode("duet safety code\n" + a + "\n" + b));
  const n = new DataView(sum).getUint32(0) % 1000000;
  const three = (x) => String(x).padStart(3, "0");
  return three(Math.floor(n / 1000)) + " " + three(n % 1000);
}
