// Live order updates: a WebSocket client that reconnects with exponential backoff and jitter,
// resubscribes after every reconnect, keeps the newest version of each order, and falls back to
// HTTP polling while sockets are unavailable. REALTIME.md is the contract.

import { validAccessToken, refreshSession } from "./api.js";
import { noteServerTimestamp } from "./clock.js";

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const OPEN_TIMEOUT_MS = 8_000;
const IDLE_PING_MS = 15_000;
const PONG_TIMEOUT_MS = 8_000;
const WAKE_PONG_TIMEOUT_MS = 4_000;
// Socket attempts that never got as far as a snapshot before we also try polling over HTTP.
const FAILURES_BEFORE_POLLING = 2;
const DEFAULT_POLL_MS = 4_000;

/**
 * The newest known state of each order. Events carry a per-order `version`; anything not newer
 * than what we hold is dropped. Poll-status answers carry no version, so `updatedAt` decides.
 */
export class OrderStore {
  constructor() {
    this.orders = new Map();
  }

  get(id) {
    return this.orders.get(id) || null;
  }

  values() {
    return [...this.orders.values()];
  }

  delete(id) {
    this.orders.delete(id);
  }

  /** Add fields we lack (details from a full order) without touching the state we hold. */
  fill(incoming) {
    const current = incoming && this.orders.get(incoming.id);
    if (!current) return null;
    const missing = Object.entries(incoming).filter(([key]) => current[key] === undefined);
    if (!missing.length) return null;
    const order = { ...current, ...Object.fromEntries(missing) };
    this.orders.set(order.id, order);
    return { order, previous: current };
  }

  /** Merge an order; returns `{order, previous}` when it changed anything, else null. */
  apply(incoming) {
    if (!incoming || !incoming.id) return null;
    const current = this.orders.get(incoming.id);
    if (!current) {
      const order = { ...incoming };
      this.orders.set(order.id, order);
      return { order, previous: null };
    }
    const order = compareOrders(incoming, current);
    if (order === "older") return null;
    if (order === "same") {
      // Same state, maybe a richer shape (a full order after a lean event): fill gaps only.
      let filled = false;
      const merged = { ...current };
      for (const [key, value] of Object.entries(incoming)) {
        if (merged[key] === undefined || (key === "version" && merged.version == null && value != null)) {
          merged[key] = value;
          filled = true;
        }
      }
      if (!filled) return null;
      this.orders.set(merged.id, merged);
      return { order: merged, previous: current };
    }
    const merged = { ...current, ...incoming };
    // A version-less update (poll-status) makes our version stale: compare by time from now on.
    if (incoming.version == null) merged.version = null;
    this.orders.set(merged.id, merged);
    return { order: merged, previous: current };
  }
}

function compareOrders(incoming, current) {
  if (incoming.version != null && current.version != null) {
    if (incoming.version > current.version) return "newer";
    return incoming.version === current.version ? "same" : "older";
  }
  const a = Date.parse(incoming.updatedAt || "");
  const b = Date.parse(current.updatedAt || "");
  if (Number.isNaN(a) || Number.isNaN(b)) return "newer";
  if (a > b) return "newer";
  if (a < b) return "older";
  const differs = ["orderStatus", "paymentStatus", "isCommitmentConfirmed", "isOtpVerified"]
    .some((key) => key in incoming && incoming[key] !== current[key]);
  return differs ? "newer" : "same";
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * One live subscription. Events (all `CustomEvent`s on this object):
 * - `state`: `{state, retryInMs?}` with state connecting | live | reconnecting | polling | offline
 * - `snapshot`: `{orders}` after every (re)subscribe
 * - `order`: `{event, version, order}` for each change
 * - `poll`: whatever the `poll` function returned (fallback mode)
 * - `servererror`: an `{type: "error", code, message}` frame
 * - `wake`: the page became visible again; callers re-sync what they show
 */
export class LiveFeed extends EventTarget {
  /**
   * @param {object} options
   * @param {object} options.subscription the subscribe frame's body: `{orderIds}` or `{storeId}`
   * @param {(ctx: {signal: AbortSignal}) => Promise<object>} [options.poll] fallback poller; may
   *   return `{nextDelayMs, stop}`
   */
  constructor({ subscription, poll = null }) {
    super();
    this.subscription = subscription;
    this.poll = poll;
    this.state = "connecting";
    this.ws = null;
    this.subscribed = false;
    this.stopped = true;
    this.attempt = 0;
    this.failuresWithoutOpen = 0;
    this.authFailures = 0;
    this.retryTimer = null;
    this.heartbeatTimer = null;
    this.pongTimer = null;
    this.lastMessageAt = 0;
    this.polling = false;
    this.pollAbort = null;
    this.onVisibility = this.onVisibility.bind(this);
    this.onOnline = this.onOnline.bind(this);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    document.addEventListener("visibilitychange", this.onVisibility);
    window.addEventListener("online", this.onOnline);
    if (typeof WebSocket !== "function") {
      this.startPolling();
      return;
    }
    this.connect();
  }

  stop() {
    this.stopped = true;
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    this.stopPolling();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close(1000);
    }
  }

  /** Change what this feed watches; takes effect at once and after every reconnect. */
  resubscribe(subscription) {
    const before = this.subscription;
    this.subscription = subscription;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      if (before?.orderIds?.length) this.send({ type: "unsubscribe", orderIds: before.orderIds });
      this.send({ type: "subscribe", ...subscription });
    }
  }

  get isLive() {
    return this.subscribed && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  setState(state, extra = {}) {
    const changed = state !== this.state;
    this.state = state;
    if (changed || extra.retryInMs != null) {
      this.dispatchEvent(new CustomEvent("state", { detail: { state, ...extra } }));
    }
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  // -------------------------------------------------------------------------------------------
  // Socket life

  async connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    let token;
    try {
      token = await validAccessToken();
    } catch (error) {
      // Signed out (api.js redirects to /login) or offline: only the second is worth retrying.
      if (error.isNetwork) this.scheduleReconnect();
      return;
    }
    if (this.stopped) return;

    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      // The token goes in the first frame, never the URL: URLs end up in proxy and server logs.
      ws = new WebSocket(`${scheme}//${window.location.host}/ws`);
    } catch {
      this.failuresWithoutOpen += 1;
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.subscribed = false;
    const openTimer = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) this.drop(ws, 4000);
    }, OPEN_TIMEOUT_MS);

    ws.onopen = () => {
      clearTimeout(openTimer);
      ws.openedAt = Date.now();
      this.lastMessageAt = Date.now();
      this.send({ type: "auth", token });
      this.send({ type: "subscribe", ...this.subscription });
      this.startHeartbeat();
    };
    ws.onmessage = (message) => {
      this.lastMessageAt = Date.now();
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.handleFrame(frame);
    };
    ws.onerror = () => {};
    ws.onclose = (event) => {
      clearTimeout(openTimer);
      if (this.ws !== ws) return;
      this.onSocketClosed(event.code, !!ws.gotSnapshot, ws.retryAfterMs);
    };
  }

  /** Abandon a socket we consider dead without waiting for the browser to notice. */
  drop(ws, code) {
    if (this.ws !== ws) return;
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close();
    } catch {
      // Already closing.
    }
    this.onSocketClosed(code, !!ws.gotSnapshot);
  }

  onSocketClosed(code, worked, retryAfterMs = null) {
    this.ws = null;
    this.subscribed = false;
    this.stopHeartbeat();
    if (this.stopped) return;
    if (code === 4401 && this.authFailures < 2) {
      // The access token expired or was refused: rotate it and come straight back.
      this.authFailures += 1;
      refreshSession()
        .then(() => this.connect())
        .catch((error) => {
          if (error.isNetwork) this.scheduleReconnect();
        });
      return;
    }
    if (!worked) this.failuresWithoutOpen += 1;
    this.scheduleReconnect(retryAfterMs);
  }

  scheduleReconnect(retryAfterMs = null) {
    if (this.stopped || this.retryTimer) return;
    let delay;
    if (retryAfterMs != null) {
      // A stopping server named when to come back (its drain spreads its clients over
      // WS_DRAIN_SECONDS); a little jitter on top, and no penalty: the socket had worked.
      delay = Math.round(retryAfterMs + Math.random() * BACKOFF_BASE_MS);
      this.attempt = 0;
    } else {
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
      // "Equal jitter": never less than half the step, so a crowd of clients spreads out
      // after a server restart without anyone retrying too eagerly.
      delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      this.attempt += 1;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
    if (this.poll && this.failuresWithoutOpen >= FAILURES_BEFORE_POLLING) this.startPolling();
    this.setState(this.polling && this.pollHealthy ? "polling" : "reconnecting", { retryInMs: delay });
  }

  reconnectNow() {
    if (this.stopped) return;
    this.attempt = 0;
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  handleFrame(frame) {
    switch (frame.type) {
      case "snapshot": {
        this.subscribed = true;
        if (this.ws) this.ws.gotSnapshot = true;
        this.attempt = 0;
        this.failuresWithoutOpen = 0;
        this.authFailures = 0;
        this.stopPolling();
        const receivedAt = Date.now();
        for (const order of frame.orders || []) noteServerTimestamp(order.updatedAt, receivedAt);
        this.setState("live");
        this.emit("snapshot", { orders: frame.orders || [] });
        break;
      }
      case "order":
        if (frame.order) {
          noteServerTimestamp(frame.order.updatedAt);
          if (frame.order.version == null && frame.version != null) frame.order.version = frame.version;
          this.emit("order", { event: frame.event, version: frame.version, order: frame.order });
        }
        break;
      case "error":
        this.emit("servererror", frame);
        break;
      case "reconnect":
        // The server is stopping (a deploy): it closes with 1012 next; come back after this
        // delay, then the subscribe's snapshot brings every order to its current version.
        if (this.ws) this.ws.retryAfterMs = Math.max(0, Number(frame.retryAfterMs) || 0);
        break;
      case "eta":
        this.emit("eta", { storeId: frame.storeId, orders: frame.orders || [] });
        break;
      default:
        // "pong" and anything newer than this client: receiving it already proved liveness.
        break;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Keep-alive: a socket can die silently (Wi-Fi hand-over, phone asleep); a ping tells us.

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastMessageAt >= IDLE_PING_MS) this.ping(PONG_TIMEOUT_MS);
    }, IDLE_PING_MS / 3);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.pongTimer);
    this.heartbeatTimer = null;
    this.pongTimer = null;
  }

  ping(timeoutMs) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.pongTimer) return;
    this.send({ type: "ping" });
    this.pongTimer = setTimeout(() => {
      this.pongTimer = null;
      this.drop(ws, 4000);
    }, timeoutMs);
  }

  onVisibility() {
    if (document.visibilityState !== "visible" || this.stopped) return;
    this.emit("wake", {});
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ping(WAKE_PONG_TIMEOUT_MS);
    else this.reconnectNow();
  }

  onOnline() {
    this.reconnectNow();
  }

  // -------------------------------------------------------------------------------------------
  // HTTP fallback

  startPolling() {
    if (this.polling || !this.poll || this.stopped) return;
    this.polling = true;
    this.pollHealthy = false;
    this.pollLoop();
  }

  stopPolling() {
    this.polling = false;
    this.pollHealthy = false;
    this.pollAbort?.abort();
    this.pollAbort = null;
  }

  async pollLoop() {
    while (this.polling && !this.stopped) {
      const controller = new AbortController();
      this.pollAbort = controller;
      let next = DEFAULT_POLL_MS;
      try {
        const result = (await this.poll({ signal: controller.signal })) || {};
        if (controller.signal.aborted) break;
        this.pollHealthy = true;
        this.emit("poll", result);
        if (!this.isLive) this.setState("polling");
        if (result.stop) {
          this.polling = false;
          break;
        }
        next = result.nextDelayMs ?? DEFAULT_POLL_MS;
      } catch (error) {
        if (controller.signal.aborted || error.name === "AbortError") break;
        if (error.status === 429) {
          const retryAfter = Number(error.headers?.get("Retry-After"));
          next = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 2000;
        } else {
          this.pollHealthy = false;
          next = DEFAULT_POLL_MS + Math.random() * 1000;
          if (!this.isLive) this.setState(error.isNetwork ? "reconnecting" : "offline");
        }
      }
      await sleep(next, controller.signal);
    }
  }
}

const STATE_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  polling: "Updating every few seconds",
  offline: "Offline",
};

const STATE_TITLE = {
  connecting: "Connecting to live updates.",
  live: "Live: changes appear as they happen.",
  reconnecting: "Connection lost. Reconnecting automatically.",
  polling: "Live connection unavailable. Checking for changes every few seconds.",
  offline: "Can't reach OrderPulse. Retrying automatically.",
};

/** Keep a `.conn` pill in step with a feed's connection state. */
export function bindConnectionPill(feed, element, { compact = false } = {}) {
  const label = element.querySelector(".conn__label");
  const render = (state) => {
    element.dataset.state = state;
    label.textContent = compact && state === "polling" ? "Polling" : STATE_TEXT[state];
    element.title = STATE_TITLE[state];
    element.setAttribute("aria-label", `Connection: ${STATE_TITLE[state]}`);
  };
  render(feed.state);
  feed.addEventListener("state", (event) => render(event.detail.state));
}
