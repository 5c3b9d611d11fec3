// Server time as seen from this device.
//
// Countdowns are computed from server timestamps (deadlines), so a phone whose clock is off
// would show the wrong time left. Every HTTP answer's `Date` header brackets the server clock
// (it is truncated to the second), and every order timestamp is a lower bound of "now" on the
// server. We keep the tightest interval [lower, upper] for (server - local) and use 0 whenever
// it fits, because a device clock synchronised by NTP is better than a one-second header.

let lower = -Infinity;
let upper = Infinity;

function tighten(lo, hi) {
  const nextLower = Math.max(lower, lo);
  const nextUpper = Math.min(upper, hi);
  if (nextLower > nextUpper) {
    // The device clock jumped (manual change, NTP step after sleep): trust the newest sample.
    lower = lo;
    upper = hi;
  } else {
    lower = nextLower;
    upper = nextUpper;
  }
}

/** Record an HTTP `Date` header seen on an answer to a request sent at `sentAt`. */
export function noteDateHeader(header, sentAt, receivedAt) {
  const server = Date.parse(header || "");
  if (Number.isNaN(server)) return;
  tighten(server - receivedAt, server + 1000 - sentAt);
}

/** Record a server timestamp that was already in the past when it arrived. */
export function noteServerTimestamp(iso, receivedAt = Date.now()) {
  const server = Date.parse(iso || "");
  if (Number.isNaN(server)) return;
  tighten(server - receivedAt, Infinity);
}

/** Forget what we learned, e.g. after the device slept and its clock may have stepped. */
export function resetClock() {
  lower = -Infinity;
  upper = Infinity;
}

export function clockOffset() {
  if (lower <= 0 && upper >= 0) return 0;
  if (lower > 0) return Number.isFinite(upper) ? (lower + upper) / 2 : lower;
  return Number.isFinite(lower) ? (lower + upper) / 2 : upper;
}

/** Milliseconds since the epoch on the server's clock. */
export function serverNow() {
  return Date.now() + clockOffset();
}

/** Milliseconds until an ISO timestamp, on the server's clock (negative once passed). */
export function msUntil(iso) {
  const at = Date.parse(iso || "");
  return Number.isNaN(at) ? null : at - serverNow();
}

/** Milliseconds since an ISO timestamp, on the server's clock. */
export function msSince(iso) {
  const at = Date.parse(iso || "");
  return Number.isNaN(at) ? null : serverNow() - at;
}
