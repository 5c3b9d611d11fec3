// The customer's tracking page for one order: status timeline, payment, items, the commitment
// countdown with "I'm on my way", the pickup code and its expiry, all kept live.

import { api, apiRaw, ApiError, bindSignOut, isCustomer, requireSession } from "./api.js";
import { msUntil, resetClock } from "./clock.js";
import {
  announce, cancellationText, formatCountdown, formatDateTime, formatMoney, formatTime,
  h, shortNumber, spokenDuration, STATUS_FLOW, STATUS_LABEL, TERMINAL,
} from "./format.js";
import { bindConnectionPill, LiveFeed, OrderStore } from "./live.js";
import { alertOnPage, disablePush, enablePush, pushState } from "./push.js";
import { Chime } from "./sound.js";
import { trustNotice } from "./trust.js";

const URGENT_MS = 60_000;
const orderId = decodeURIComponent(window.location.pathname.split("/").filter(Boolean)[1] || "");
const view = document.getElementById("view");
const notices = document.getElementById("notices");
const store = new OrderStore();

let user = null;
let feed = null;
let pickupOtp = null;
let otpState = "idle"; // idle | loading | failed
let confirming = false;
let commitError = "";
let expiryCheck = null;
let statusTimes = {};
let ui = null;
let notify = "off"; // unsupported | blocked | on | off | busy
let notifyError = "";
let estimateTimer = null;
// The ready chime: browsers play sound only after a gesture, so turning notices on unlocks it.
const chime = new Chime();
chime.enabled = false;
const ESTIMATE_REFRESH_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// Loading

async function main() {
  user = await requireSession();
  bindSignOut();
  if (!/^[0-9a-f]{24}$/i.test(orderId)) {
    showProblem("Order not found", "This link doesn't point to an order. Open it from your list of orders instead.");
    return;
  }
  loadTrust();
  pushState().then((state) => { notify = state; render(); }).catch(() => { notify = "unsupported"; });
  await loadOrder({ first: true });
}

async function loadTrust() {
  if (!isCustomer(user)) return;
  try {
    const me = await api("/api/users/me");
    const notice = trustNotice(me);
    notices.replaceChildren(...(notice ? [notice] : []));
  } catch {
    // The tracking page works without it; the profile only adds a warning.
  }
}

let loadRetry = 0;
async function loadOrder({ first = false } = {}) {
  try {
    const order = await api(`/api/orders/${orderId}`);
    loadRetry = 0;
    takePickupOtp(order);
    if (first) rememberInitialTimes(order);
    applyOrder(order);
    if (first) {
      startLive();
      estimateTimer = setTimeout(refreshEstimate, ESTIMATE_REFRESH_MS);
    }
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 404) {
      showProblem("Order not found", "We couldn't find this order. It may have been placed from another account; open it from your list of orders.");
    } else if (error.status === 403) {
      showProblem("This order belongs to someone else", `${error.message} Sign in with the account that placed it.`, true);
    } else if (first && (error.isNetwork || error.status >= 500 || error.status === 429)) {
      // Keep trying on the first load: the server may be restarting.
      loadRetry += 1;
      const delay = Math.min(10_000, 1000 * 2 ** loadRetry) * (0.5 + Math.random() / 2);
      showProblem("Can't load your order yet", `${error.message} Trying again in ${Math.ceil(delay / 1000)} s.`);
      setTimeout(() => loadOrder({ first: true }), delay);
    } else if (!first) {
      // A background re-sync failed; the live feed will catch up.
    } else {
      showProblem("Something went wrong", error.message);
    }
  }
}

function takePickupOtp(order) {
  if (order && typeof order.pickupOtp === "string" && order.pickupOtp) {
    pickupOtp = order.pickupOtp;
    otpState = "idle";
  }
}

async function loadOtp() {
  if (otpState === "loading") return;
  otpState = "loading";
  render();
  try {
    const order = await api(`/api/orders/${orderId}`);
    otpState = "idle";
    takePickupOtp(order);
    if (!pickupOtp && order.orderStatus === "ready") otpState = "failed";
    applyOrder(order);
  } catch {
    otpState = "failed";
  }
  render();
}

function startLive() {
  feed = new LiveFeed({ subscription: { orderIds: [orderId] }, poll: pollStatus });
  bindConnectionPill(feed, document.getElementById("conn"), { compact: true });
  feed.addEventListener("snapshot", (event) => {
    for (const order of event.detail.orders) if (order.id === orderId) applyOrder(order);
  });
  feed.addEventListener("order", (event) => {
    if (event.detail.order.id === orderId) applyOrder(event.detail.order);
  });
  feed.addEventListener("eta", (event) => {
    // The store's queue moved: the server pushes this order's new estimate (no version: not a change).
    const entry = event.detail.orders.find((item) => item.id === orderId);
    const held = store.get(orderId);
    if (entry && held) {
      store.orders.set(orderId, { ...held, estimatedReadyAt: entry.estimatedReadyAt });
      render();
    }
  });
  feed.addEventListener("servererror", (event) => {
    const { code, message } = event.detail;
    if (code === "forbidden" || code === "not_found") {
      showNotice("error", "Live updates are not available for this order.", message || "");
    }
  });
  feed.addEventListener("wake", () => {
    // The phone slept: its clock may have stepped and deadlines may have passed meanwhile.
    resetClock();
    loadOrder();
  });
  let wasLive = false;
  feed.addEventListener("state", (event) => {
    const { state } = event.detail;
    if (state === "live" && wasLive === "lost") announce("Live updates reconnected.");
    if (state === "live") wasLive = true;
    else if (wasLive === true && (state === "reconnecting" || state === "offline")) {
      wasLive = "lost";
      announce("Connection lost. Reconnecting.");
    }
  });
  feed.start();
}

// Fallback while sockets are unavailable: poll-status with ETags, long-polling where supported.
let etag = null;
async function pollStatus({ signal }) {
  const started = Date.now();
  const headers = etag ? { "If-None-Match": etag } : {};
  const url = `/api/orders/${orderId}/poll-status${etag ? "?wait=25" : ""}`;
  const answer = await apiRaw(url, { headers, signal });
  if (answer.status === 200 && answer.body?.data) {
    etag = answer.headers.get("ETag") || null;
    applyOrder({ id: orderId, ...answer.body.data });
  }
  const order = store.get(orderId);
  return {
    stop: !!order && TERMINAL.has(order.orderStatus),
    // At most one request a second (the server's limit), at least 3 s apart unless it long-polled.
    nextDelayMs: Math.max(1100, 3000 - (Date.now() - started)),
  };
}

// ---------------------------------------------------------------------------------------------
// State changes

// The full order carries when each step happened (acceptedAt, preparingAt, readyAt, pickedUpAt),
// so the times survive a reload; events carry only the lean shape, so a live step is stamped here.
const STEP_TIME_FIELD = { accepted: "acceptedAt", processing: "preparingAt" };

function rememberInitialTimes(order) {
  for (const [status, key] of Object.entries(STEP_TIME_FIELD)) {
    if (order[key]) statusTimes[status] = order[key];
  }
  if (order.orderStatus === "accepted" || order.orderStatus === "processing") {
    statusTimes[order.orderStatus] ||= order.updatedAt;
  }
}

function applyOrder(incoming) {
  const result = store.apply(incoming);
  if (!result) return;
  const { order, previous } = result;
  const statusChanged = previous && previous.orderStatus !== order.orderStatus;
  if (statusChanged) {
    statusTimes.previous = previous.orderStatus;
    if (!statusTimes[order.orderStatus]) statusTimes[order.orderStatus] = order.updatedAt;
    // The kitchen undid a ready marked by mistake (issue 27): say so rather than just "being prepared".
    if (previous.orderStatus === "ready" && order.orderStatus === "processing") readyUndone = true;
    announceStatus(order);
    if (order.orderStatus !== "ready") pickupOtp = null;
    if (order.orderStatus === "ready") readyAlert(order);
    refreshEstimate();
  }
  if (previous && !previous.isCommitmentConfirmed && order.isCommitmentConfirmed) {
    announce("Thanks! The store knows you're on your way.");
  }
  if (order.orderStatus === "ready" && !pickupOtp && otpState === "idle") loadOtp();
  if (TERMINAL.has(order.orderStatus)) clearTimeout(expiryCheck);
  render();
}

/** On the open page, the moment it is ready: a notice, the chime, a vibration, and a system
 *  notification when the tab is in the background. */
function readyAlert(order) {
  const where = order.store?.name ? ` at ${order.store.name}` : "";
  showNotice("success", "Your order is ready.", ` Head to the counter${where} and show your pickup code.`);
  chime.play();
  alertOnPage(`Order ${order.orderNumber || ""} is ready`.replace("  ", " "), `Pick it up${where}.`, `/track/${orderId}`);
}

/** The ready-time estimate moves with the store's queue: read it again with the full order. */
async function refreshEstimate() {
  clearTimeout(estimateTimer);
  const current = store.get(orderId);
  if (!current || !["placed", "accepted", "processing"].includes(current.orderStatus)) return;
  try {
    const order = await api(`/api/orders/${orderId}`);
    const held = store.get(orderId);
    if (held && held.version <= order.version) {
      store.orders.set(orderId, { ...held, estimatedReadyAt: order.estimatedReadyAt });
      render();
    }
  } catch {
    // The live feed keeps the order itself current; the estimate waits for the next try.
  }
  estimateTimer = setTimeout(refreshEstimate, ESTIMATE_REFRESH_MS);
}

async function toggleNotify() {
  notifyError = "";
  const turningOn = notify !== "on";
  notify = "busy";
  render();
  try {
    if (turningOn) {
      chime.enabled = true;
      chime.unlock();
      await enablePush();
    } else {
      await disablePush();
    }
    notify = await pushState();
    if (turningOn) announce("You'll be notified on this device when your order is ready.");
  } catch (error) {
    notifyError = error.message || "Notifications could not be turned on.";
    notify = await pushState().catch(() => "off");
  }
  render();
}

function announceStatus(order) {
  const messages = {
    accepted: "Your order has been accepted.",
    processing: notReadyAfterAll(order) ? `${NOT_READY_TITLE}. ${NOT_READY_TEXT}` : "Your order is being prepared.",
    ready: "Your order is ready for pickup. Your pickup code is on screen.",
    picked_up: "Order picked up. Enjoy your meal!",
    cancelled: `Your order was cancelled. ${cancellationText(order.cancellationReason)}`,
  };
  if (messages[order.orderStatus]) announce(messages[order.orderStatus]);
  document.title = `${STATUS_LABEL[order.orderStatus] || "Your order"} · ${order.orderNumber || "OrderPulse"}`;
}

async function confirmCommitment() {
  if (confirming) return;
  confirming = true;
  commitError = "";
  render();
  try {
    const body = await api(`/api/orders/${orderId}/confirm-commitment`, { method: "POST", envelope: true });
    const current = store.get(orderId);
    if (current && !current.isCommitmentConfirmed) {
      // The event follows on the socket; show the confirmation right away.
      store.orders.set(orderId, { ...current, isCommitmentConfirmed: true });
      announce(body.message || "Commitment confirmed. Your order will be processed.");
    }
  } catch (error) {
    if (error.message === "Commitment already confirmed for this order.") {
      const current = store.get(orderId);
      if (current) store.orders.set(orderId, { ...current, isCommitmentConfirmed: true });
    } else {
      commitError = error.message;
      announce(error.message);
      // Expired or no longer open: the order changed on the server; show what it is now.
      loadOrder();
    }
  } finally {
    confirming = false;
    render();
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

function showProblem(title, message, offerSignOut = false) {
  feed?.stop();
  view.removeAttribute("aria-busy");
  ui = null;
  view.replaceChildren(
    h("section", { class: "card state-panel", role: "alert" },
      h("h1", { text: title }),
      h("p", { text: message }),
      h("div", { class: "stack" },
        h("a", { class: "button", href: "/orders", text: "Go to my orders" }),
        offerSignOut ? h("button", { class: "button button--quiet", type: "button", "data-signout": true, text: "Sign in with another account" }) : null)),
  );
  bindSignOut(view);
  document.getElementById("conn").hidden = true;
}

function showNotice(kind, title, text) {
  notices.append(h("div", { class: `notice notice--${kind}`, role: "status" }, h("div", {}, h("strong", { text: title }), text)));
}

function buildView() {
  const hero = h("section", { class: "card track-hero", "aria-labelledby": "status-heading" });
  const storeLine = h("p", { class: "track-hero__store" });
  const number = h("p", { class: "track-hero__number" });
  const status = h("h1", { class: "track-hero__status", id: "status-heading", tabindex: "-1" });
  const detail = h("p", { class: "track-hero__detail" });
  const estimate = h("p", { class: "track-hero__eta", "aria-live": "polite", hidden: true });
  const notifyButton = h("button", { class: "button button--quiet", type: "button", id: "notify-button" });
  notifyButton.addEventListener("click", toggleNotify);
  const notifyText = h("p", { class: "muted notify__text", role: "status" });
  const notifyBox = h("div", { class: "notify", hidden: true }, notifyButton, notifyText);
  hero.append(storeLine, number, status, detail, estimate, notifyBox);

  const commitTime = h("span", { class: "countdown commit__time", role: "timer", "aria-live": "off" });
  const meterFill = h("span");
  const commitButton = h("button", { class: "button button--large button--block", type: "button", id: "commit-button" }, "I'm on my way");
  commitButton.addEventListener("click", confirmCommitment);
  const commitErrorBox = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const commitText = h("p", { class: "muted" });
  const commitDone = h("p", { class: "commit__done", role: "status" });
  const commit = h("section", { class: "card commit", "aria-labelledby": "commit-heading" },
    h("h2", { id: "commit-heading", text: "Are you on your way?" }),
    commitText,
    h("div", { class: "commit__row" }, commitTime, h("div", { class: "commit__meter", "aria-hidden": "true" }, meterFill)),
    commitButton,
    commitDone);

  const otpCode = h("div", { class: "otp__code", "aria-live": "off" });
  const otpExpiry = h("p", { class: "otp__expiry" });
  const otpRetry = h("button", { class: "button button--quiet", type: "button", text: "Try again" });
  otpRetry.addEventListener("click", () => { otpState = "idle"; loadOtp(); });
  const otpMissing = h("div", { class: "otp__missing" }, h("p", { class: "otp__missing-text" }), otpRetry);
  const otp = h("section", { class: "card otp", "aria-labelledby": "otp-heading" },
    h("h2", { class: "otp__label", id: "otp-heading", text: "Pickup code" }),
    otpCode,
    otpMissing,
    h("p", { class: "otp__hint", text: "Show or read this code at the counter. Only you can see it." }),
    otpExpiry);

  const timeline = h("ol", { class: "timeline" });
  const timelineCard = h("section", { class: "card", "aria-labelledby": "progress-heading" },
    h("h2", { class: "section-title", id: "progress-heading", text: "Progress" }), timeline);

  const items = h("ul", { class: "items" });
  const total = h("p", { class: "items__total-row" });
  const instructions = h("p", { class: "instructions" });
  const itemsCard = h("section", { class: "card", "aria-labelledby": "items-heading" },
    h("h2", { class: "section-title", id: "items-heading", text: "Your order" }), items, total, instructions);

  const facts = h("dl", { class: "facts" });
  const paymentCard = h("section", { class: "card", "aria-labelledby": "payment-heading" },
    h("h2", { class: "section-title", id: "payment-heading", text: "Payment" }), facts);

  const top = h("div", { class: "track-top" }, hero, commit, otp);
  view.replaceChildren(
    commitErrorBox,
    top,
    h("div", { class: "track-grid" }, h("div", { class: "stack" }, timelineCard), h("div", { class: "stack" }, itemsCard, paymentCard)),
    h("p", { class: "page-foot", text: "This page updates by itself. You can keep it open while you walk over." }),
  );
  view.removeAttribute("aria-busy");
  return {
    top, hero, storeLine, number, status, detail, estimate, notifyBox, notifyButton, notifyText,
    commit, commitTime, meterFill, commitButton, commitErrorBox, commitText, commitDone,
    otp, otpCode, otpExpiry, otpMissing, otpRetry,
    timeline, items, total, instructions, facts,
  };
}

const NOT_READY_TITLE = "Not ready after all";
const NOT_READY_TEXT = "The kitchen marked your order ready by mistake and needs a few more minutes. We'll tell you when it's ready; your pickup code comes back then.";
let readyUndone = false;

/** Back to preparing after a ready undone by the kitchen: seen live, or on the order after a reload. */
function notReadyAfterAll(order) {
  return order.orderStatus === "processing" && (readyUndone || (Array.isArray(order.readyUndos) && order.readyUndos.length > 0));
}

function headline(order) {
  const needsCommit = order.requiresCommitment && !order.isCommitmentConfirmed;
  switch (order.orderStatus) {
    case "placed":
      if (needsCommit) return ["Confirm you're on your way", "Tap “I'm on my way” before the timer runs out so the store can prepare your order."];
      if (order.paymentStatus === "success") return ["Payment verified", "The kitchen will accept your order in a moment."];
      return ["Waiting for payment check", "The store is verifying your UPI payment. This usually takes a minute or two."];
    case "accepted":
      return ["Order accepted", "You're in the queue. The kitchen will start on it shortly."];
    case "processing":
      if (notReadyAfterAll(order)) return [NOT_READY_TITLE, NOT_READY_TEXT];
      return ["Being prepared", "The kitchen is making your order now."];
    case "ready":
      return ["Ready for pickup", `Head to the counter${order.store?.name ? ` at ${order.store.name}` : ""} and show your pickup code.`];
    case "picked_up":
      return ["Picked up", "Enjoy your meal!"];
    case "cancelled":
      return ["Order cancelled", cancellationText(order.cancellationReason)];
    default:
      return [STATUS_LABEL[order.orderStatus] || "Your order", ""];
  }
}

function render() {
  const order = store.get(orderId);
  if (!order) return;
  if (!ui) ui = buildView();
  const [title, detail] = headline(order);

  ui.hero.dataset.status = order.orderStatus;
  ui.storeLine.textContent = [order.store?.name, order.store?.location].filter(Boolean).join(" · ");
  ui.number.textContent = order.orderNumber ? `Order #${shortNumber(order.orderNumber)} · ${order.orderNumber}` : "";
  if (ui.status.textContent !== title) ui.status.textContent = title;
  ui.detail.textContent = detail;
  document.title = `${STATUS_LABEL[order.orderStatus] || "Your order"} · ${order.orderNumber || "OrderPulse"}`;

  renderEstimate(order);
  renderNotify(order);
  renderCommit(order);
  renderOtp(order);
  ui.top.dataset.split = String(!ui.commit.hidden || !ui.otp.hidden);
  renderTimeline(order);
  renderItems(order);
  renderPayment(order);
  tick();
}

function renderEstimate(order) {
  const waiting = ["placed", "accepted", "processing"].includes(order.orderStatus);
  const at = waiting ? formatTime(order.estimatedReadyAt) : "";
  ui.estimate.hidden = !at;
  if (at) ui.estimate.textContent = `Ready around ${at}`;
}

function renderNotify(order) {
  const active = !TERMINAL.has(order.orderStatus) && order.orderStatus !== "ready";
  ui.notifyBox.hidden = !active || notify === "unsupported";
  if (ui.notifyBox.hidden) return;
  ui.notifyButton.disabled = notify === "busy" || notify === "blocked";
  ui.notifyButton.textContent = notify === "on" ? "Stop notifications on this device" : "Notify me when it's ready";
  ui.notifyText.textContent = notifyError
    || (notify === "on" ? "This device will be told when your order is ready, even with this page closed." : "")
    || (notify === "blocked" ? "Notifications are blocked for this site in your browser's settings." : "");
}

function renderCommit(order) {
  ui.commitErrorBox.hidden = !commitError;
  ui.commitErrorBox.textContent = commitError;
  const open = order.orderStatus === "placed" && order.requiresCommitment;
  ui.commit.hidden = !open;
  if (!open) return;
  const pending = !order.isCommitmentConfirmed;
  const mine = isCustomer(user);
  ui.commitButton.hidden = !pending || !mine;
  ui.commitButton.disabled = confirming;
  ui.commitButton.textContent = confirming ? "Confirming…" : "I'm on my way";
  ui.commitTime.parentElement.hidden = !pending;
  ui.commitText.hidden = !pending;
  ui.commitText.textContent = "Because of earlier missed pickups, this order needs a quick confirmation. If the timer runs out, the order is cancelled and counted as another no-show.";
  ui.commitDone.hidden = pending;
  ui.commitDone.textContent = pending ? "" : "Thanks! You confirmed you're on your way.";
}

function renderOtp(order) {
  const ready = order.orderStatus === "ready";
  ui.otp.hidden = !ready;
  if (!ready) return;
  const digits = pickupOtp ? [...pickupOtp] : [];
  const shown = ui.otpCode.dataset.code || "";
  if (shown !== (pickupOtp || "")) {
    ui.otpCode.dataset.code = pickupOtp || "";
    ui.otpCode.replaceChildren(...digits.map((digit) => h("span", { class: "otp__digit", text: digit })));
    ui.otpCode.setAttribute("aria-label", pickupOtp ? `Pickup code ${digits.join(" ")}` : "");
    ui.otpCode.id = "pickup-otp";
  }
  ui.otpCode.hidden = !pickupOtp;
  ui.otpMissing.hidden = !!pickupOtp;
  ui.otpMissing.querySelector(".otp__missing-text").textContent =
    otpState === "failed" ? "We couldn't load your pickup code." : "Loading your pickup code…";
  ui.otpRetry.hidden = otpState !== "failed";
}

const CHECK = () => {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.innerHTML = '<path d="M3 8.5l3 3 7-7" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/>';
  return svg;
};
const CROSS = () => {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.innerHTML = '<path d="M4 4l8 8M12 4l-8 8" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>';
  return svg;
};

/** How far a cancelled order got before it was cancelled. */
function reachedBeforeCancel(order) {
  if (statusTimes.previous && STATUS_FLOW.includes(statusTimes.previous)) return STATUS_FLOW.indexOf(statusTimes.previous);
  if (order.readyAt || order.cancellationReason === "no_show_timeout") return STATUS_FLOW.indexOf("ready");
  if (order.cancellationReason === "store_cancelled" && order.paymentStatus === "success") return STATUS_FLOW.indexOf("accepted");
  return 0;
}

function stepTime(status, order) {
  const times = {
    placed: order.createdAt,
    accepted: order.acceptedAt || statusTimes.accepted,
    processing: order.preparingAt || statusTimes.processing,
    ready: order.readyAt,
    picked_up: order.pickedUpAt || (order.orderStatus === "picked_up" ? statusTimes.picked_up || order.updatedAt : null),
  };
  return formatTime(times[status]);
}

const STEP_SUB = {
  placed: "We've got your order",
  accepted: "Payment verified, in the queue",
  processing: "The kitchen is cooking",
  ready: "Waiting at the counter",
  picked_up: "Collected with your code",
};

function renderTimeline(order) {
  const cancelled = order.orderStatus === "cancelled";
  const currentIndex = cancelled ? reachedBeforeCancel(order) : STATUS_FLOW.indexOf(order.orderStatus);
  const rows = STATUS_FLOW.map((status, index) => {
    let state = "upcoming";
    if (cancelled) state = index <= currentIndex ? "done" : "skipped";
    else if (index < currentIndex || (index === currentIndex && status === "picked_up")) state = "done";
    else if (index === currentIndex) state = "current";
    const label = status === "placed" ? "Placed" : STATUS_LABEL[status];
    return h("li", { class: "timeline__step", dataset: { state, step: status }, "aria-current": state === "current" ? "step" : null },
      h("span", { class: "timeline__mark" }, state === "done" ? CHECK() : null),
      h("span", { class: "timeline__label" }, label,
        h("span", { class: "visually-hidden", text: state === "done" ? " (done)" : state === "current" ? " (now)" : state === "skipped" ? " (skipped)" : "" }),
        h("br"), h("span", { class: "timeline__sub", text: STEP_SUB[status] })),
      h("span", { class: "timeline__time", text: state === "done" || state === "current" ? stepTime(status, order) : "" }));
  });
  if (cancelled) {
    rows.splice(currentIndex + 1, 0, h("li", { class: "timeline__step", dataset: { state: "cancelled", step: "cancelled" }, "aria-current": "step" },
      h("span", { class: "timeline__mark" }, CROSS()),
      h("span", { class: "timeline__label" }, "Cancelled", h("br"), h("span", { class: "timeline__sub", text: cancellationText(order.cancellationReason) })),
      h("span", { class: "timeline__time", text: formatTime(order.cancelledAt) })));
  }
  ui.timeline.replaceChildren(...rows);
}

function renderItems(order) {
  const items = Array.isArray(order.items) ? order.items : [];
  ui.items.replaceChildren(...items.map((item) => h("li", {},
    h("span", { class: "items__qty", text: `${item.quantity}×` }),
    h("span", { text: item.name }),
    h("span", { text: formatMoney(item.total ?? item.price * item.quantity) }))));
  ui.total.replaceChildren(h("span", { text: "Total" }), h("span", { text: formatMoney(order.totalAmount) }));
  ui.instructions.hidden = !order.specialInstructions;
  ui.instructions.textContent = order.specialInstructions ? `Note for the kitchen: ${order.specialInstructions}` : "";
}

function renderPayment(order) {
  const chip = h("span", { class: "chip", dataset: { payment: order.paymentStatus } }, {
    pending: order.orderStatus === "cancelled" ? "Not verified" : "Waiting for store to verify",
    success: "Verified",
    failed: "Failed",
  }[order.paymentStatus] || order.paymentStatus || "—");
  const rows = [
    ["Status", chip],
    ["Method", order.paymentMethod === "direct_store_upi" ? "UPI, paid to the store" : order.paymentMethod],
    ["Reference", order.paymentReference ? h("span", { class: "mono", text: order.paymentReference }) : null],
    ["UPI transaction", order.transactionId ? h("span", { class: "mono", text: order.transactionId }) : null],
    ["Placed", formatDateTime(order.createdAt)],
  ].filter(([, value]) => value);
  ui.facts.replaceChildren(...rows.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", {}, value)]));
}

// ---------------------------------------------------------------------------------------------
// Countdowns: recomputed from server timestamps on every tick, so a late timer or a phone that
// slept shows the right time as soon as it runs again.

function scheduleExpiryCheck() {
  if (expiryCheck) return;
  // The server cancels within a second of the deadline and pushes it; ask anyway in case the
  // socket is down, and keep asking until the order has moved on.
  expiryCheck = setTimeout(async () => {
    await loadOrder();
    expiryCheck = null;
  }, 1500);
}

let lastSpokenMinute = null;
function tick() {
  const order = store.get(orderId);
  if (!order || !ui) return;

  if (!ui.commit.hidden && !order.isCommitmentConfirmed && order.commitmentDeadlineAt) {
    const left = msUntil(order.commitmentDeadlineAt);
    const windowMs = Date.parse(order.commitmentDeadlineAt) - Date.parse(order.createdAt);
    ui.commitTime.textContent = left > 0 ? formatCountdown(left) : "0:00";
    ui.commitTime.setAttribute("aria-label", left > 0 ? `${spokenDuration(left)} left to confirm` : "Time is up");
    ui.commitTime.classList.toggle("countdown--urgent", left < URGENT_MS);
    const fraction = windowMs > 0 ? Math.min(1, Math.max(0, left / windowMs)) : 0;
    ui.meterFill.style.transform = `scaleX(${fraction})`;
    const minute = Math.ceil(left / 60_000);
    if (left > 0 && minute !== lastSpokenMinute && minute <= 2) {
      lastSpokenMinute = minute;
      announce(`${spokenDuration(left)} left to confirm you're on your way.`);
    }
    if (left <= 0) {
      ui.commitButton.disabled = true;
      ui.commitText.textContent = "Time's up. Checking with the store…";
      scheduleExpiryCheck();
    }
  }

  if (!ui.otp.hidden && order.readyExpiresAt) {
    const left = msUntil(order.readyExpiresAt);
    ui.otpExpiry.classList.toggle("countdown--urgent", left < 2 * URGENT_MS);
    if (left > 0) {
      ui.otpExpiry.replaceChildren("Collect within ", h("span", { class: "countdown", id: "ready-countdown", text: formatCountdown(left) }),
        ` (by ${formatTime(order.readyExpiresAt)})`);
    } else {
      ui.otpExpiry.textContent = "The pickup window has ended. Checking with the store…";
      scheduleExpiryCheck();
    }
  }
}

setInterval(tick, 250);

main().catch((error) => {
  showProblem("Something went wrong", error?.message || "Please reload the page.");
});

