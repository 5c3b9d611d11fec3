// The kitchen display: every active order of the staff member's store in four columns, kept
// live over the store subscription, with the actions that move an order along. Keyboard first, in
// the layout of a bump bar (see the footer): arrows or 1-9 select a card, Enter advances it, S
// strikes its next item, R opens the recall, U undoes a ready, P prints its ticket.

import { api, ApiError, bindSignOut, isStaff, requireSession } from "./api.js";
import { msSince, msUntil, resetClock, serverNow } from "./clock.js";
import {
  ACTIVE_STATUSES, announce, cancellationText, formatAge, formatCountdown, formatMoney, h, shortNumber, TERMINAL,
} from "./format.js";
import { bindConnectionPill, LiveFeed, OrderStore } from "./live.js";
import { Chime } from "./sound.js";

// A finished order stays on screen this long so staff see it leave.
const LEAVE_AFTER_MS = 8_000;
const NEW_HIGHLIGHT_MS = 20_000;
// Age since placed after which a card stands out, per column.
const OVERDUE_AFTER_MS = { placed: 5 * 60_000, accepted: 8 * 60_000, processing: 15 * 60_000 };
// A ready order is "expiring" in its last quarter or last two minutes, whichever is longer.
const EXPIRING_MIN_MS = 2 * 60_000;
const STALE_BANNER_AFTER_MS = 3_000;
// Colour timers: the time since an order was accepted against the store's own typical preparation
// time (learned by the server from its recent orders); amber from this share of it, red past it.
const WARN_SHARE = 0.75;
const TYPICAL_REFRESH_MS = 5 * 60_000;
const PRINT_ON_ACCEPT_KEY = "orderpulse.kitchen.printOnAccept";

const store = new OrderStore();
const cards = new Map();
const chime = new Chime();
const board = document.getElementById("board");
const banner = document.getElementById("banner");
const columns = Object.fromEntries([...board.querySelectorAll(".kcol")].map((column) => [column.dataset.col, column]));

let feed = null;
let firstSnapshot = true;
let staleTimer = null;
let typicalMinutes = null;
let kitchenStoreName = "";

// ---------------------------------------------------------------------------------------------
// Start-up

/** The API's texts say "OTP" (the seeds' word); the people at the counter say "pickup code". */
function inPlainWords(text) {
  return text ? text.replace(/\bOTP\b/g, "pickup code").replace(/^pickup code/, "Pickup code") : text;
}

async function main() {
  // Admins have their console; customers their orders.
  const user = await requireSession((who) => isStaff(who));
  bindSignOut();
  setupSound();
  startClock();
  const storeId = user.storeId;
  if (!isStaff(user) || !storeId) {
    showState("This screen is for store staff",
      isStaff(user) ? "Your account is not linked to a store yet. Ask an admin to assign one." : "Sign in with a store staff account to see the kitchen display.");
    return;
  }
  loadStoreName(storeId);
  loadTypical(storeId);
  setInterval(() => loadTypical(storeId), TYPICAL_REFRESH_MS);
  setupStoreControls(storeId);
  setupKeyboard();
  setupRecall();
  setupPrintSetting();
  followCatalog(storeId);
  feed = new LiveFeed({ subscription: { storeId }, poll: pollKitchen });
  bindConnectionPill(feed, document.getElementById("conn"));
  feed.addEventListener("snapshot", (event) => onSnapshot(event.detail.orders));
  feed.addEventListener("order", (event) => onOrder(event.detail.order, event.detail.event));
  feed.addEventListener("poll", (event) => onPoll(event.detail));
  feed.addEventListener("state", (event) => onConnection(event.detail.state));
  feed.addEventListener("servererror", (event) => {
    if (event.detail.code === "forbidden") showBanner("This account can't watch this store's orders.", true);
  });
  feed.addEventListener("wake", () => resetClock());
  feed.start();
}

async function loadStoreName(storeId) {
  try {
    const data = await api(`/api/stores/${storeId}`);
    const info = data?.store || data;
    showStoreOpen(info);
    kitchenStoreName = info?.name || "";
    const name = document.getElementById("store-name");
    name.replaceChildren(info?.name || "", info?.location ? h("span", { text: ` · ${info.location}` }) : "");
    if (info?.name) document.title = `Kitchen · ${info.name} · OrderPulse`;
  } catch {
    // The store name is decoration; the board works without it.
  }
}

function showState(title, text) {
  board.replaceWith(h("main", { class: "kstate", id: "board" },
    h("div", {}, h("h1", { text: title }), h("p", { text }),
      h("button", { class: "button", type: "button", "data-signout": true, text: "Sign in with another account" }))));
  document.getElementById("conn").hidden = true;
  bindSignOut();
}

function setupSound() {
  const toggle = document.getElementById("sound-toggle");
  const render = () => {
    toggle.setAttribute("aria-pressed", String(chime.enabled));
    toggle.textContent = chime.enabled ? "Sound on" : "Sound off";
    toggle.title = chime.enabled ? "A chime plays for each new order. Click to mute." : "Click to play a chime for each new order.";
  };
  toggle.addEventListener("click", () => {
    chime.setEnabled(!chime.enabled);
    render();
  });
  // A chime left on from an earlier shift needs one gesture on this page before it can play.
  const unlock = () => { if (chime.enabled) chime.unlock(); };
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
  render();
}

function startClock() {
  const clock = document.getElementById("clock");
  const format = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const update = () => { clock.textContent = format.format(serverNow()); };
  update();
  setInterval(update, 5_000);
}

// ---------------------------------------------------------------------------------------------
// Incoming state

function onSnapshot(orders) {
  const seen = new Set();
  for (const order of orders) {
    seen.add(order.id);
    const known = cards.has(order.id);
    applyOrder(order, { isNew: !firstSnapshot && !known && order.orderStatus === "placed" });
  }
  // Anything we still show that the server no longer lists finished long ago.
  for (const id of [...cards.keys()]) {
    if (!seen.has(id)) removeCard(id);
  }
  firstSnapshot = false;
  updateCounts();
}

function onOrder(order, event) {
  applyOrder(order, { isNew: event === "created" && !cards.has(order.id) });
  updateCounts();
}

/** Fallback: the active orders of the store over HTTP while sockets are unavailable. */
async function pollKitchen({ signal }) {
  const data = await api(`/api/orders?status=${ACTIVE_STATUSES.join(",")}&limit=100`, { signal });
  const orders = Array.isArray(data) ? data : data?.orders || data?.items || [];
  return { orders, nextDelayMs: 3_000 };
}

function onPoll({ orders = [] }) {
  const seen = new Set(orders.map((order) => order.id));
  for (const order of orders) applyOrder(order, { isNew: !firstSnapshot && !cards.has(order.id) });
  firstSnapshot = false;
  // Orders that left the active list finished meanwhile: learn how, so the card can leave.
  for (const [id, card] of cards) {
    if (!seen.has(id) && !TERMINAL.has(card.order.orderStatus)) refreshOrder(id);
  }
  updateCounts();
}

function applyOrder(incoming, { isNew = false } = {}) {
  const result = store.apply(incoming);
  const order = result?.order || store.get(incoming.id);
  if (!order) return;
  if (TERMINAL.has(order.orderStatus) && !cards.has(order.id)) {
    // Finished before we ever showed it (snapshots include the last hour's orders).
    store.delete(order.id);
    return;
  }
  if (!ACTIVE_STATUSES.includes(order.orderStatus) && !TERMINAL.has(order.orderStatus)) return;
  let card = cards.get(order.id);
  if (!card) {
    card = new OrderCard(order);
    cards.set(order.id, card);
    if (isNew) {
      card.highlight();
      chime.play();
      announce(`New order ${shortNumber(order.orderNumber)}${order.customerFirstName ? ` for ${order.customerFirstName}` : ""}.`);
    }
    ensureDetails(order);
  } else if (!result) {
    return;
  }
  const previous = result?.previous;
  card.update(order);
  placeCard(card);
  if (previous && previous.orderStatus !== order.orderStatus) {
    if (TERMINAL.has(order.orderStatus)) {
      announce(`Order ${shortNumber(order.orderNumber)} ${order.orderStatus === "picked_up" ? "picked up" : `cancelled: ${cancellationText(order.cancellationReason, "kitchen")}`}.`);
      card.leave(() => removeCard(order.id));
    }
  }
}

/** Fetch the full order once for fields the live feed may not carry (items, payment ids). */
async function ensureDetails(order) {
  if (order.items && order.paymentReference !== undefined && order.createdAt) return;
  try {
    const full = await api(`/api/orders/${order.id}`);
    const result = store.apply(full) || store.fill(full);
    if (result && cards.has(order.id)) {
      cards.get(order.id).update(result.order);
      placeCard(cards.get(order.id));
      updateCounts();
    }
  } catch {
    // The card still shows what the feed sent; the next event may fill it in.
  }
}

async function refreshOrder(id) {
  try {
    const full = await api(`/api/orders/${id}`);
    applyOrder(full);
  } catch (error) {
    if (error.status === 404 || error.status === 403) removeCard(id);
  }
  updateCounts();
}

function removeCard(id) {
  const card = cards.get(id);
  if (!card) return;
  card.destroy();
  cards.delete(id);
  store.delete(id);
  updateCounts();
}

function placeCard(card) {
  const status = TERMINAL.has(card.order.orderStatus) ? card.column : card.order.orderStatus;
  if (!columns[status]) return;
  const list = columns[status].querySelector(".kcol__cards");
  if (card.column === status && card.element.parentElement === list) return;
  const hadFocus = card.element.contains(document.activeElement);
  const cardFocused = document.activeElement === card.element;
  card.column = status;
  // Oldest first: the kitchen works the queue from the top.
  const created = Date.parse(card.order.createdAt) || 0;
  const after = [...list.children].find((element) => {
    const other = cards.get(element.dataset.id);
    return other && (Date.parse(other.order.createdAt) || 0) > created;
  });
  list.insertBefore(card.element, after || null);
  if (cardFocused) card.element.focus();
  else if (hadFocus) card.focusPrimary();
  updateCounts();
}

function updateCounts() {
  for (const [status, column] of Object.entries(columns)) {
    const count = [...cards.values()].filter((card) => card.column === status && !TERMINAL.has(card.order.orderStatus)).length;
    column.querySelector(".kcol__count").textContent = String(count);
    column.querySelector(".kcol__empty").hidden = column.querySelector(".kcol__cards").children.length > 0;
  }
  boardCards().forEach((card, index) => card.setKey(index < 9 ? String(index + 1) : ""));
  renderAllDay();
}

function onConnection(state) {
  clearTimeout(staleTimer);
  if (state === "live" || state === "polling") {
    banner.hidden = true;
    board.dataset.stale = "false";
    return;
  }
  if (state === "connecting" && firstSnapshot) return;
  // Brief blips (a token refresh, a quick restart) are not worth alarming the kitchen.
  staleTimer = setTimeout(() => {
    board.dataset.stale = "true";
    showBanner(state === "offline"
      ? "Can't reach OrderPulse. Orders shown may be out of date; retrying automatically."
      : "Connection lost. Reconnecting… Orders shown may be out of date.", state === "offline");
  }, STALE_BANNER_AFTER_MS);
}

function showBanner(text, error = false) {
  banner.textContent = text;
  banner.classList.toggle("kbanner--error", error);
  banner.hidden = false;
}

// ---------------------------------------------------------------------------------------------
// One card per order. Built once and updated in place so typing in the OTP field or focus on a
// button survives live updates.

class OrderCard {
  constructor(order) {
    this.order = order;
    this.column = null;
    this.busy = false;
    // Enter pressed while the card's last action was still being saved: done once it is.
    this.advanceQueued = false;
    this.actionsKey = null;
    this.message = null;
    this.armedTimer = null;
    const titleId = `order-${order.id}`;
    this.short = h("span", { class: "kcard__short" });
    this.full = h("span", { class: "kcard__full" });
    this.age = h("span", { class: "kcard__age" });
    this.customer = h("span", { class: "kcard__customer" });
    this.fullVisible = h("span", { class: "kcard__full", "aria-hidden": "true" });
    this.badges = h("div", { class: "kcard__badges" });
    this.items = h("ul", { class: "kcard__items", "aria-label": "Items" });
    this.note = h("p", { class: "kcard__note" });
    this.pay = h("p", { class: "kcard__pay" });
    this.timer = h("p", { class: "kcard__timer" });
    this.messageBox = h("p", { class: "kcard__message", role: "status" });
    this.actions = h("div", { class: "kcard__actions" });
    this.final = h("p", { class: "kcard__final" });
    this.key = h("span", { class: "kcard__key", "aria-hidden": "true" });
    this.heat = h("p", { class: "kcard__heat", hidden: true });
    this.hint = h("p", { class: "kcard__hint", hidden: true });
    // Focusable itself (tabindex -1): the selected card of the bump-bar keys.
    this.element = h("li", { class: "kcard", tabindex: "-1", dataset: { id: order.id }, "aria-labelledby": titleId },
      h("div", { class: "kcard__head" }, this.key,
        h("h3", { class: "kcard__number", id: titleId }, this.short, h("span", { class: "visually-hidden" }, this.full)),
        this.age),
      h("p", { class: "kcard__who" }, this.customer, this.fullVisible), this.badges, this.items, this.note, this.pay, this.heat, this.timer, this.hint, this.messageBox, this.actions, this.final);
  }

  setKey(key) {
    if (this.key.textContent !== key) this.key.textContent = key;
    this.element.setAttribute("aria-keyshortcuts", key);
  }

  get marks() {
    return new Set(Array.isArray(this.order.itemMarks) ? this.order.itemMarks : []);
  }

  get markable() {
    return ["placed", "accepted", "processing"].includes(this.order.orderStatus);
  }

  /** Strike (or unstrike) one item: stored on the order, so every screen of the store follows. */
  async markItem(index, marked) {
    if (!this.markable) return;
    const number = shortNumber(this.order.orderNumber);
    try {
      const data = await api(`/api/orders/${this.order.id}/items/${index}/mark`, { method: "PUT", body: { marked } });
      if (data && data.id === this.order.id) applyOrder(data);
      const item = this.order.items?.[index];
      announce(`${item ? item.name : "Item"} ${marked ? "struck" : "back"} on order ${number}.`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.showMessage(error.message, "error");
      refreshOrder(this.order.id);
    }
  }

  /** The bump bar's S: strike the first item not struck yet (with `back`, unstrike the last struck). */
  strikeNext(back = false) {
    const items = Array.isArray(this.order.items) ? this.order.items : [];
    const marks = this.marks;
    const indexes = items.map((_, index) => index);
    const target = back ? indexes.reverse().find((index) => marks.has(index)) : indexes.find((index) => !marks.has(index));
    if (target !== undefined) this.markItem(target, !back);
  }

  renderItems() {
    const items = Array.isArray(this.order.items) ? this.order.items : [];
    const marks = this.marks;
    const key = JSON.stringify([items, [...marks], this.markable]);
    if (this.itemsKey === key) return;
    const focusedIndex = this.items.contains(document.activeElement) ? document.activeElement.dataset.index : null;
    this.itemsKey = key;
    this.items.replaceChildren(...items.map((item, index) => {
      const struck = marks.has(index);
      const button = h("button", {
        class: "kitem", type: "button", dataset: { index: String(index) }, "aria-pressed": String(struck),
        disabled: !this.markable, "aria-label": `${item.quantity} × ${item.name}${struck ? ", done" : ""}`,
      }, h("span", { class: "kcard__qty", text: `${item.quantity}×` }), h("span", { class: "kcard__item-name", text: item.name }));
      button.addEventListener("click", () => this.markItem(index, !this.marks.has(index)));
      return h("li", { class: struck ? "kitem--struck" : "" }, button);
    }));
    if (focusedIndex != null) this.items.querySelector(`[data-index="${focusedIndex}"]`)?.focus();
  }

  /** Every item struck while preparing: the card suggests marking it ready. */
  renderSuggestion() {
    const items = Array.isArray(this.order.items) ? this.order.items : [];
    const done = this.order.orderStatus === "processing" && items.length > 0 && items.every((_, index) => this.marks.has(index));
    this.hint.hidden = !done;
    this.hint.textContent = done ? "All items done: Mark ready (Enter)" : "";
    this.actions.querySelector('[data-action="ready"]')?.classList.toggle("kbtn--suggest", done);
    this.element.classList.toggle("kcard--done", done);
  }

  /** What Enter does on a selected card: its first forward action, or the pickup code field.
   * While the last action is being saved its buttons are disabled, but its live event has often
   * moved the card already, and a cook presses Enter for the next step: that press waits for the
   * save and then runs (one press at most; dropped if the save failed, since the card then shows
   * a state the cook did not expect). */
  advance() {
    if (this.busy) {
      this.advanceQueued = true;
      return;
    }
    const input = this.actions.querySelector("input");
    if (input) {
      input.focus();
      return;
    }
    const primary = this.actions.querySelector("button[data-action]:not([disabled])");
    primary?.click();
  }

  highlight() {
    this.isNew = true;
    this.element.classList.add("kcard--new");
    clearTimeout(this.newTimer);
    this.newTimer = setTimeout(() => {
      this.isNew = false;
      this.element.classList.remove("kcard--new");
      this.renderBadges();
    }, NEW_HIGHLIGHT_MS);
  }

  update(order) {
    this.order = order;
    const status = order.orderStatus;
    this.element.dataset.status = status;
    this.short.textContent = `#${shortNumber(order.orderNumber)}`;
    this.full.textContent = ` ${order.orderNumber || ""}`;
    this.fullVisible.textContent = order.orderNumber || "";
    this.customer.textContent = order.customerFirstName || "";
    this.customer.hidden = !order.customerFirstName;

    this.renderItems();
    this.note.hidden = !order.specialInstructions;
    this.note.textContent = order.specialInstructions || "";

    const payParts = [formatMoney(order.totalAmount)];
    if (order.transactionId) payParts.push(`UPI ${order.transactionId}`);
    else if (order.paymentReference) payParts.push(`Ref ${order.paymentReference}`);
    this.pay.replaceChildren(...payParts.flatMap((part, index) => [index ? " · " : "", index ? h("span", { class: "mono", text: part }) : part]));
    this.pay.hidden = status !== "placed" || order.totalAmount == null;

    this.renderBadges();
    this.renderActions();
    this.renderSuggestion();
    this.renderFinal();
    this.tick();
  }

  renderBadges() {
    const order = this.order;
    const badges = [];
    if (this.isNew && !TERMINAL.has(order.orderStatus)) badges.push(h("span", { class: "kbadge kbadge--new", text: "NEW" }));
    if (this.overdue) badges.push(h("span", { class: "kbadge kbadge--overdue", text: "OVERDUE" }));
    const payment = { pending: ["kbadge--pending", "Payment pending"], success: ["kbadge--paid", "Paid"], failed: ["kbadge--failed", "Payment failed"] }[order.paymentStatus];
    if (payment) badges.push(h("span", { class: `kbadge ${payment[0]}`, dataset: { payment: order.paymentStatus }, text: payment[1] }));
    if (order.requiresCommitment && !TERMINAL.has(order.orderStatus)) {
      if (!order.isCommitmentConfirmed) {
        this.commitBadge = h("span", { class: "kbadge kbadge--commit", dataset: { commitment: "pending" } }, "Awaiting “on my way”", h("span", { class: "kcard__commit-left" }));
        badges.push(this.commitBadge);
      } else if (order.orderStatus === "placed") {
        badges.push(h("span", { class: "kbadge kbadge--committed", dataset: { commitment: "confirmed" }, text: "Customer on the way" }));
      }
    }
    this.badges.replaceChildren(...badges);
  }

  actionsKeyFor(order) {
    if (TERMINAL.has(order.orderStatus)) return "final";
    const commitPending = order.requiresCommitment && !order.isCommitmentConfirmed;
    return [order.orderStatus, order.paymentStatus, commitPending].join("|");
  }

  renderActions() {
    const key = this.actionsKeyFor(this.order);
    if (key === this.actionsKey) {
      this.setBusy(this.busy);
      return;
    }
    const hadFocus = this.actions.contains(document.activeElement);
    this.actionsKey = key;
    this.showMessage(null);
    const order = this.order;
    const number = shortNumber(order.orderNumber);
    const nodes = [];
    const commitPending = order.requiresCommitment && !order.isCommitmentConfirmed;
    switch (order.orderStatus) {
      case "placed":
        if (order.paymentStatus === "pending") {
          nodes.push(this.button("Mark paid", "kbtn--blue", () => this.setPayment("success"), `Mark paid, order ${number}`, "paid"));
          nodes.push(this.dangerButton("Not paid", "Tap again to cancel", () => this.setPayment("failed"), `Not paid, order ${number} (cancels the order)`));
        } else if (order.paymentStatus === "success" && commitPending) {
          nodes.push(h("p", { class: "kcard__waiting", text: "Paid. Waiting for the customer to confirm they're on the way." }));
        } else if (order.paymentStatus === "success") {
          nodes.push(this.button("Accept order", "kbtn--blue", () => this.accept(), `Accept order, order ${number}`, "accept"));
        }
        break;
      case "accepted":
        nodes.push(this.button("Start preparing", "kbtn--orange", () => this.setStatus("processing"), `Start preparing, order ${number}`, "start"));
        break;
      case "processing":
        nodes.push(this.button("Mark ready", "", () => this.setStatus("ready"), `Mark ready, order ${number}`, "ready"));
        break;
      case "ready":
        nodes.push(this.otpForm());
        break;
      default:
        break;
    }
    this.actions.replaceChildren(...nodes);
    this.setBusy(this.busy);
    if (hadFocus) this.focusPrimary();
  }

  button(label, variant, onClick, ariaLabel, action) {
    const button = h("button", { class: `kbtn ${variant}`.trim(), type: "button", "aria-label": ariaLabel, text: label,
      dataset: action ? { action } : {} });
    button.addEventListener("click", onClick);
    return button;
  }

  /** A destructive action needs a second press within a few seconds. */
  dangerButton(label, armedLabel, onConfirm, ariaLabel) {
    const button = h("button", { class: "kbtn kbtn--danger", type: "button", "aria-label": ariaLabel, text: label, dataset: { armed: "false" } });
    button.addEventListener("click", () => {
      if (button.dataset.armed === "true") {
        clearTimeout(this.armedTimer);
        onConfirm();
        return;
      }
      button.dataset.armed = "true";
      button.textContent = armedLabel;
      button.setAttribute("aria-label", `${armedLabel}, order ${shortNumber(this.order.orderNumber)} was not paid`);
      clearTimeout(this.armedTimer);
      this.armedTimer = setTimeout(() => {
        button.dataset.armed = "false";
        button.textContent = label;
        button.setAttribute("aria-label", ariaLabel);
      }, 4_000);
    });
    return button;
  }

  otpForm() {
    const inputId = `otp-${this.order.id}`;
    const errorId = `otp-error-${this.order.id}`;
    const input = h("input", {
      id: inputId, name: "otp", type: "text", inputmode: "numeric", autocomplete: "off", pattern: "[0-9]{6}",
      maxlength: "6", placeholder: "······", "aria-describedby": errorId, spellcheck: "false",
    });
    input.addEventListener("input", () => {
      const digits = input.value.replace(/\D/g, "").slice(0, 6);
      if (digits !== input.value) input.value = digits;
      input.removeAttribute("aria-invalid");
    });
    const form = h("form", { class: "otp-form", novalidate: true },
      h("label", { for: inputId, text: "Customer's pickup code" }),
      input,
      h("button", { class: "kbtn", type: "submit", text: "Complete pickup", "aria-label": `Complete pickup, order ${shortNumber(this.order.orderNumber)}` }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.verifyOtp(input);
    });
    this.otpInput = input;
    this.messageBox.id = errorId;
    return form;
  }

  focusPrimary() {
    const target = this.actions.querySelector("input, button:not([disabled])");
    (target || this.element).focus?.();
  }

  setBusy(busy) {
    this.busy = busy;
    for (const control of this.actions.querySelectorAll("button, input")) control.disabled = busy;
    this.element.setAttribute("aria-busy", String(busy));
  }

  showMessage(text, kind = "info") {
    text = inPlainWords(text);
    this.message = text;
    this.messageBox.hidden = !text;
    this.messageBox.textContent = text || "";
    this.messageBox.className = `kcard__message kcard__message--${kind}`;
  }

  renderFinal() {
    const order = this.order;
    const finished = TERMINAL.has(order.orderStatus);
    this.final.hidden = !finished;
    if (!finished) return;
    this.final.textContent = order.orderStatus === "picked_up"
      ? "✓ Picked up"
      : `Cancelled · ${cancellationText(order.cancellationReason, "kitchen")}`;
    this.timer.hidden = true;
    this.messageBox.hidden = true;
  }

  async run(path, body, { successMessage } = {}) {
    if (this.busy) return;
    this.setBusy(true);
    this.showMessage(null);
    let saved = false;
    try {
      const answer = await api(path, { method: path.endsWith("verify-otp") ? "POST" : "PATCH", body, envelope: true });
      const data = answer?.data;
      if (data && data.id === this.order.id && data.orderStatus) applyOrder(data);
      const message = successMessage?.(answer);
      if (message) this.showMessage(message, "info");
      saved = true;
      return true;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 409) {
        // Someone else (another screen, a deadline) changed it first: show the order as it is now.
        await refreshOrder(this.order.id);
        if (cards.get(this.order.id) === this) this.showMessage("This order changed on another screen. It's now up to date.", "info");
        announce(`Order ${shortNumber(this.order.orderNumber)} changed elsewhere and was refreshed.`);
      } else {
        this.showMessage(error.message, "error");
        announce(inPlainWords(error.message));
        if (error.status === 400 || error.status === 404) refreshOrder(this.order.id);
      }
      return false;
    } finally {
      this.setBusy(false);
      const queued = this.advanceQueued;
      this.advanceQueued = false;
      if (queued && saved && cards.get(this.order.id) === this) this.advance();
    }
  }

  setPayment(paymentStatus) {
    return this.run(`/api/orders/${this.order.id}/payment-status`, { paymentStatus }, {
      successMessage: (answer) => answer?.message && /waiting/i.test(answer.message) ? answer.message : null,
    });
  }

  setStatus(status) {
    return this.run(`/api/orders/${this.order.id}/status`, { status });
  }

  async accept() {
    if (await this.setStatus("accepted") && printOnAccept()) printTicket(this.order, "kitchen");
  }

  async verifyOtp(input) {
    const otp = input.value.trim();
    if (!/^\d{6}$/.test(otp)) {
      input.setAttribute("aria-invalid", "true");
      this.showMessage("Enter the 6-digit code from the customer's screen.", "error");
      input.focus();
      return;
    }
    const ok = await this.run(`/api/orders/${this.order.id}/verify-otp`, { otp });
    if (!ok && cards.get(this.order.id) === this && this.order.orderStatus === "ready") {
      input.setAttribute("aria-invalid", "true");
      input.disabled = false;
      input.select();
      input.focus();
    }
  }

  leave(onGone) {
    if (this.leaving) return;
    this.leaving = true;
    this.element.classList.add("kcard--leaving");
    this.leaveTimer = setTimeout(() => {
      this.element.classList.add("kcard--gone");
      setTimeout(onGone, 600);
    }, LEAVE_AFTER_MS);
  }

  destroy() {
    clearTimeout(this.leaveTimer);
    clearTimeout(this.newTimer);
    clearTimeout(this.armedTimer);
    this.element.remove();
  }

  /** Once a second: ages, countdowns and the overdue state, all from server timestamps. */
  tick() {
    const order = this.order;
    const status = order.orderStatus;
    const age = msSince(order.createdAt);
    this.age.textContent = age == null ? "" : formatAge(age);
    this.age.setAttribute("aria-label", age == null ? "" : `placed ${formatAge(age)} ago`);

    let overdue = false;
    let expiring = false;
    this.timer.hidden = true;
    if (status === "ready" && order.readyExpiresAt) {
      const left = msUntil(order.readyExpiresAt);
      const windowMs = Date.parse(order.readyExpiresAt) - Date.parse(order.readyAt || order.updatedAt);
      expiring = left < Math.max(EXPIRING_MIN_MS, (windowMs || 0) / 4);
      this.timer.hidden = false;
      this.timer.textContent = left > 0 ? `No-show cancel in ${formatCountdown(left)}` : "Pickup window over · cancelling";
      this.timer.classList.toggle("kcard__timer--urgent", expiring);
    } else if ((status === "accepted" || status === "processing") && typicalMinutes) {
      // Against the store's own typical preparation time, from when the order was accepted.
      const since = msSince(order.acceptedAt || order.createdAt);
      const typicalMs = typicalMinutes * 60_000;
      const heat = since == null ? "ok" : since >= typicalMs ? "late" : since >= typicalMs * WARN_SHARE ? "warn" : "ok";
      this.heat.hidden = since == null;
      this.heat.dataset.heat = heat;
      this.heat.textContent = since == null ? "" : `${minutesSeconds(since)} · typical ${formatTypical(typicalMinutes)}`;
      this.heat.title = "Time since accepted, against this store's typical preparation time";
      overdue = heat === "late";
    } else if (OVERDUE_AFTER_MS[status] && age != null) {
      overdue = age > OVERDUE_AFTER_MS[status] && !(status === "placed" && order.requiresCommitment && !order.isCommitmentConfirmed);
    }
    if (status !== "accepted" && status !== "processing") this.heat.hidden = true;
    if (status === "placed" && order.requiresCommitment && !order.isCommitmentConfirmed && order.commitmentDeadlineAt && this.commitBadge) {
      const left = msUntil(order.commitmentDeadlineAt);
      this.commitBadge.querySelector(".kcard__commit-left").textContent = left > 0 ? ` · ${formatCountdown(left)}` : " · expired";
    }
    if (TERMINAL.has(status)) {
      overdue = false;
      expiring = false;
      this.timer.hidden = true;
    }
    this.element.classList.toggle("kcard--expiring", expiring);
    if (overdue !== !!this.overdue) {
      this.overdue = overdue;
      this.element.classList.toggle("kcard--overdue", overdue);
      this.renderBadges();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Store and menu: open or close the store, mark items sold out and back, change prices. Each change
// is one PATCH; customers' open menu pages follow from the catalog event the server publishes.

const storeDialog = document.getElementById("store-dialog");
const storeStatus = document.getElementById("store-status");
const dialogError = document.getElementById("store-dialog-error");
let storeInfo = null;

function showStoreOpen(info) {
  if (!info) return;
  storeInfo = info;
  storeStatus.hidden = false;
  storeStatus.dataset.open = String(info.isActive);
  storeStatus.textContent = !info.isActive ? "Closed"
    : info.isPaused ? "Paused: no new orders"
    : info.delayMinutes ? `Open · running ${info.delayMinutes} min late` : "Open for orders";
  document.getElementById("store-open-text").textContent = info.isActive
    ? "The store is open: customers can order."
    : "The store is closed: customers see it closed and cannot order.";
  const toggle = document.getElementById("store-open-toggle");
  toggle.textContent = info.isActive ? "Close the store" : "Open the store";
  showPace(info);
}

/** The kitchen's declared pace: a delay added to every customer's estimate, or new orders paused. */
function showPace(info) {
  const delay = info.delayMinutes || 0;
  document.getElementById("store-pace-text").textContent = info.isPaused
    ? "new orders paused; orders already placed go on."
    : delay ? `${delay} min added to every customer's ready time.` : "customers see the usual ready times.";
  for (const button of document.querySelectorAll(".kpace [data-delay]")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.delay) === delay));
  }
  document.getElementById("store-pause-toggle").textContent = info.isPaused ? "Take new orders again" : "Pause new orders";
  const cap = document.getElementById("store-cap");
  if (document.activeElement !== cap) cap.value = info.itemsPerSlot == null ? "" : String(info.itemsPerSlot);
}

async function setPace(storeId, body, spoken) {
  dialogError.hidden = true;
  try {
    showStoreOpen(await api(`/api/stores/${storeId}/pace`, { method: "PATCH", body }));
    announce(spoken);
  } catch (error) {
    showDialogError(error);
  }
}

function showDialogError(error) {
  dialogError.textContent = error instanceof ApiError ? error.message : "Something went wrong. Please try again.";
  dialogError.hidden = false;
}

function setupStoreControls(storeId) {
  const opener = document.getElementById("store-controls");
  opener.hidden = false;
  opener.addEventListener("click", () => {
    dialogError.hidden = true;
    storeDialog.showModal();
    loadStoreMenu(storeId);
  });
  document.getElementById("store-dialog-close").addEventListener("click", () => storeDialog.close());
  storeDialog.addEventListener("close", () => opener.focus());
  for (const button of document.querySelectorAll(".kpace [data-delay]")) {
    const delay = Number(button.dataset.delay);
    button.addEventListener("click", () => setPace(storeId, { delayMinutes: delay },
      delay ? `Ready times now include ${delay} extra minutes.` : "Ready times are back to usual."));
  }
  // The cap on items per 15-minute slot: a full slot sends new orders to the next one, by itself.
  const saveCap = () => {
    const text = document.getElementById("store-cap").value.trim();
    const cap = text === "" ? null : /^\d+$/.test(text) ? Number(text) : text;
    setPace(storeId, { itemsPerSlot: cap }, cap == null ? "No cap on orders." : `At most ${cap} items per 15 minutes.`);
  };
  document.getElementById("store-cap-save").addEventListener("click", saveCap);
  document.getElementById("store-cap").addEventListener("keydown", (event) => { if (event.key === "Enter") saveCap(); });
  document.getElementById("store-pause-toggle").addEventListener("click", () => {
    if (!storeInfo) return;
    const pause = !storeInfo.isPaused;
    setPace(storeId, { paused: pause }, pause ? "New orders are paused." : "Taking new orders again.");
  });
  const toggle = document.getElementById("store-open-toggle");
  toggle.addEventListener("click", async () => {
    if (!storeInfo) return;
    toggle.disabled = true;
    dialogError.hidden = true;
    try {
      const open = !storeInfo.isActive;
      showStoreOpen(await api(`/api/stores/${storeId}`, { method: "PATCH", body: { isActive: open } }));
      announce(open ? "The store is open." : "The store is closed.");
    } catch (error) {
      showDialogError(error);
    } finally {
      toggle.disabled = false;
    }
  });
}

async function loadStoreMenu(storeId) {
  try {
    const [info, items] = await Promise.all([api(`/api/stores/${storeId}`), api(`/api/stores/${storeId}/menu?all=true`, { auth: false })]);
    showStoreOpen(info);
    showMenuRows(items);
  } catch (error) {
    showDialogError(error);
  }
}

/** The dialog's rows for `items`; a row being typed in is left as it is. */
function showMenuRows(items) {
  const body = document.getElementById("store-menu");
  if (!items.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "3", text: "No menu items yet. An admin adds them." })));
    return;
  }
  const rows = [...body.querySelectorAll("tr[data-item-id]")];
  if (rows.length !== items.length || rows.some((row, index) => row.dataset.itemId !== items[index].id)) {
    body.replaceChildren(...items.map((item) => menuRow(item)));
    return;
  }
  // Row by row: moving the focused row out of the table, even to put it back, would drop its focus.
  items.forEach((item, index) => {
    if (!rows[index].contains(document.activeElement)) rows[index].replaceWith(menuRow(item));
  });
}

// The store's catalog events (the stream customers' menu pages follow): another screen or an admin
// opening, closing or changing the store shows here at once.
function followCatalog(storeId) {
  let revision = -1;
  const events = new EventSource(`/api/stores/${encodeURIComponent(storeId)}/menu/events`);
  events.addEventListener("menu", (event) => {
    const snapshot = JSON.parse(event.data);
    if (snapshot.revision < revision) return;
    revision = snapshot.revision;
    showStoreOpen(snapshot.store);
    if (storeDialog.open) showMenuRows(snapshot.menu);
  });
  window.addEventListener("pagehide", () => events.close());
}

function menuRow(item) {
  const row = h("tr", { dataset: { itemId: item.id, soldOut: String(!item.isAvailable) } });
  const price = h("input", { type: "text", inputmode: "decimal", value: String(item.price), "aria-label": `Price of ${item.name} in rupees` });
  const save = h("button", { class: "button button--quiet", type: "button", text: "Save", "aria-label": `Save the price of ${item.name}` });
  const soldOut = h("input", { type: "checkbox", "aria-label": `Sold out: ${item.name}` });
  soldOut.checked = !item.isAvailable;
  let busy = false;
  const apply = async (changes) => {
    if (busy) return;
    busy = true;
    dialogError.hidden = true;
    try {
      const saved = await api(`/api/menu/${item.id}`, { method: "PATCH", body: changes });
      // The row on screen now: a catalog event may have rebuilt it meanwhile.
      const current = document.querySelector(`#store-menu tr[data-item-id="${item.id}"]`);
      if (current) {
        const fresh = menuRow(saved);
        const focused = current.contains(document.activeElement);
        current.replaceWith(fresh);
        // Keep the keyboard where it was.
        if (focused) fresh.querySelector("isAvailable" in changes ? "input[type=checkbox]" : "input[type=text]")?.focus();
      }
      announce(`${saved.name}: ${saved.isAvailable ? "back on the menu" : "sold out"}, ${formatMoney(saved.price)}.`);
    } catch (error) {
      showDialogError(error);
      soldOut.checked = !item.isAvailable;
    } finally {
      busy = false;
    }
  };
  const raw = () => {
    const text = price.value.trim();
    const value = Number(text);
    return text === "" ? null : Number.isFinite(value) ? value : text;
  };
  save.addEventListener("click", () => apply({ price: raw() }));
  price.addEventListener("keydown", (event) => { if (event.key === "Enter") apply({ price: raw() }); });
  soldOut.addEventListener("change", () => apply({ isAvailable: !soldOut.checked }));
  row.append(h("td", {}, item.name, item.category ? h("span", { class: "visually-hidden", text: ` (${item.category})` }) : null),
    h("td", {}, price, save),
    h("td", {}, h("label", { class: "kswitch" }, soldOut, h("span", { "aria-hidden": "true", text: "Sold out" }))));
  return row;
}

// ---------------------------------------------------------------------------------------------
// The store's typical preparation time (colour timers) and the all-day counts

function minutesSeconds(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function formatTypical(minutes) {
  return `${Number.isInteger(minutes) ? minutes : minutes.toFixed(1)} min`;
}

async function loadTypical(storeId) {
  try {
    const info = await api(`/api/stores/${storeId}`);
    if (typeof info?.typicalPrepMinutes === "number") {
      typicalMinutes = info.typicalPrepMinutes;
      document.getElementById("typical-prep").textContent =
        `Typical preparation here: ${formatTypical(typicalMinutes)}. Timers turn amber at ${Math.round(WARN_SHARE * 100)}%, red past it.`;
      for (const card of cards.values()) card.tick();
    }
  } catch {
    // Timers stay plain until the next try.
  }
}

/** Each item still to make across the open orders (placed, accepted, preparing), struck ones left out. */
function renderAllDay() {
  const totals = new Map();
  for (const card of cards.values()) {
    if (!["placed", "accepted", "processing"].includes(card.order.orderStatus)) continue;
    const marks = card.marks;
    (card.order.items || []).forEach((item, index) => {
      if (!marks.has(index)) totals.set(item.name, (totals.get(item.name) || 0) + (item.quantity || 0));
    });
  }
  const rows = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const list = document.getElementById("allday");
  const key = JSON.stringify(rows);
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.replaceChildren(...rows.map(([name, count]) => h("li", { dataset: { item: name } },
      h("span", { class: "kallday__name", text: name }), h("span", { class: "kallday__count", text: `×${count}` }))));
  }
  document.getElementById("allday-empty").hidden = rows.length > 0;
}

// ---------------------------------------------------------------------------------------------
// The bump bar: every action from the keyboard, on the selected (focused) card

/** The cards on the board in reading order (columns left to right, each top to bottom). */
function boardCards() {
  return [...board.querySelectorAll(".kcol__cards > .kcard")].map((element) => cards.get(element.dataset.id))
    .filter((card) => card && !card.leaving);
}

function selectedCard() {
  const element = document.activeElement?.closest?.(".kcard");
  return element ? cards.get(element.dataset.id) : null;
}

function select(card) {
  if (!card) return;
  card.element.focus();
  card.element.scrollIntoView({ block: "nearest" });
}

function moveSelection(key) {
  const all = boardCards();
  const current = selectedCard();
  if (!current) return select(all[0]);
  const columnNames = Object.keys(columns);
  const inColumn = (name) => all.filter((card) => card.column === name);
  const mine = inColumn(current.column);
  const index = mine.indexOf(current);
  if (key === "ArrowUp") return select(mine[Math.max(0, index - 1)]);
  if (key === "ArrowDown") return select(mine[Math.min(mine.length - 1, index + 1)]);
  const step = key === "ArrowLeft" ? -1 : 1;
  for (let at = columnNames.indexOf(current.column) + step; at >= 0 && at < columnNames.length; at += step) {
    const next = inColumn(columnNames[at]);
    if (next.length) return select(next[Math.min(index, next.length - 1)]);
  }
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function setupKeyboard() {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (storeDialog.open) return;
    if (recallDialog.open) return onRecallKey(event);
    if (typing(event.target)) {
      // Esc leaves the pickup code field for its card.
      if (event.key === "Escape") {
        const card = event.target.closest(".kcard");
        if (card) {
          event.preventDefault();
          card.focus();
        }
      }
      return;
    }
    const card = selectedCard();
    const key = event.key;
    if (key.startsWith("Arrow")) {
      event.preventDefault();
      moveSelection(key);
    } else if (/^[1-9]$/.test(key)) {
      event.preventDefault();
      select(boardCards()[Number(key) - 1]);
    } else if (key === "Enter" && card && event.target === card.element) {
      event.preventDefault();
      card.advance();
    } else if (key === "Escape" && card) {
      event.preventDefault();
      card.element.focus();
    } else if ((key === "s" || key === "S") && card) {
      event.preventDefault();
      card.strikeNext(event.shiftKey);
    } else if (key === "r" || key === "R") {
      event.preventDefault();
      openRecall();
    } else if ((key === "u" || key === "U") && card) {
      event.preventDefault();
      undoReady(card.order, (message, kind) => card.showMessage(message, kind));
    } else if ((key === "p" || key === "P") && card) {
      event.preventDefault();
      printTicket(card.order, event.shiftKey ? "receipt" : "kitchen");
    }
  });
}

/** Put a ready order back to preparing (a mistaken bump); the server refuses once its window is over. */
async function undoReady(order, show) {
  const number = shortNumber(order.orderNumber);
  if (order.orderStatus !== "ready") {
    show(`Order ${number} is not ready: nothing to undo.`, "error");
    return false;
  }
  try {
    const answer = await api(`/api/orders/${order.id}/undo-ready`, { method: "POST", envelope: true });
    if (answer?.data?.id === order.id) applyOrder(answer.data);
    cards.get(order.id)?.showMessage(answer?.message || "Back to preparing.", "info");
    announce(`Order ${number} is back to preparing.`);
    show(answer?.message || "Back to preparing.", "info");
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    show(error.message, "error");
    announce(error.message);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Recall: the last 20 orders that left the board, for a look, an undo or a reprint

const recallDialog = document.getElementById("recall-dialog");
const recallList = document.getElementById("recall-list");
const recallDetail = document.getElementById("recall-detail");
const recallError = document.getElementById("recall-error");
let recalled = [];
let recallOpener = null;

function setupRecall() {
  document.getElementById("recall-open").addEventListener("click", () => openRecall());
  document.getElementById("recall-close").addEventListener("click", () => recallDialog.close());
  recallDialog.addEventListener("close", () => {
    const back = recallOpener && document.contains(recallOpener) ? recallOpener : boardCards()[0]?.element;
    (back || document.getElementById("recall-open")).focus();
  });
}

function leftText(order) {
  if (order.orderStatus === "picked_up") return `Picked up ${formatAge(msSince(order.pickedUpAt || order.updatedAt))} ago`;
  if (order.orderStatus === "cancelled") return `Cancelled · ${cancellationText(order.cancellationReason, "kitchen")}`;
  return `Ready ${formatAge(msSince(order.readyAt || order.updatedAt))} ago`;
}

async function openRecall() {
  recallOpener = document.activeElement;
  recallError.hidden = true;
  if (!recallDialog.open) recallDialog.showModal();
  try {
    recalled = await api("/api/orders/recall");
  } catch (error) {
    recallError.textContent = error instanceof ApiError ? error.message : "Could not load the recent orders.";
    recallError.hidden = false;
    recalled = [];
  }
  recallList.replaceChildren(...recalled.map((order, index) => {
    const button = h("button", { class: "krecall__item", type: "button", dataset: { id: order.id, status: order.orderStatus } },
      h("span", { class: "krecall__number", text: `#${shortNumber(order.orderNumber)}` }),
      h("span", { class: "krecall__left", text: leftText(order) }),
      h("span", { class: "krecall__items", text: (order.items || []).map((item) => `${item.quantity}× ${item.name}`).join(", ") }));
    button.addEventListener("click", () => showRecalled(index));
    button.addEventListener("focus", () => showRecalled(index));
    return h("li", {}, button);
  }));
  if (!recalled.length) {
    recallList.replaceChildren(h("li", { class: "krecall__none", text: "No orders have left the board yet." }));
    recallDetail.replaceChildren();
    return;
  }
  recallList.querySelector("button").focus();
}

function recalledIndex() {
  const button = document.activeElement?.closest?.(".krecall__item");
  const index = button ? [...recallList.querySelectorAll(".krecall__item")].indexOf(button) : -1;
  return index >= 0 ? index : Number(recallDetail.dataset.index ?? -1);
}

function showRecalled(index) {
  const order = recalled[index];
  if (!order) return;
  recallDetail.dataset.index = String(index);
  const undo = h("button", { class: "kbtn kbtn--orange", type: "button", text: "Undo ready (U)", "aria-keyshortcuts": "U",
    hidden: order.orderStatus !== "ready" });
  undo.addEventListener("click", () => recallUndo(index));
  const ticket = h("button", { class: "kbtn kbtn--ghost", type: "button", text: "Print ticket (P)", "aria-keyshortcuts": "P" });
  ticket.addEventListener("click", () => printTicket(order, "kitchen"));
  const receipt = h("button", { class: "kbtn kbtn--ghost", type: "button", text: "Print receipt (⇧P)", "aria-keyshortcuts": "Shift+P" });
  receipt.addEventListener("click", () => printTicket(order, "receipt"));
  recallDetail.replaceChildren(
    h("h3", { text: `#${shortNumber(order.orderNumber)} · ${order.customerFirstName || ""}` }),
    h("p", { class: "krecall__state", text: `${leftText(order)} · ${order.orderNumber}` }),
    h("ul", { class: "krecall__lines" }, ...(order.items || []).map((item) => h("li", { text: `${item.quantity}× ${item.name}` }))),
    order.specialInstructions ? h("p", { class: "kcard__note", text: order.specialInstructions }) : "",
    ...(order.readyUndos || []).map((entry) => h("p", { class: "krecall__undo",
      text: `Ready undone by ${entry.by?.name || "staff"} ${formatAge(msSince(entry.at))} ago` })),
    h("div", { class: "krecall__actions" }, undo, ticket, receipt));
}

async function recallUndo(index) {
  const order = recalled[index];
  if (!order) return;
  recallError.hidden = true;
  const done = await undoReady(order, (message, kind) => {
    if (kind === "error") {
      recallError.textContent = message;
      recallError.hidden = false;
    }
  });
  if (done) recallDialog.close();
}

function onRecallKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const items = [...recallList.querySelectorAll(".krecall__item")];
  const index = recalledIndex();
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const next = items[Math.max(0, Math.min(items.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)))];
    next?.focus();
  } else if (event.key === "u" || event.key === "U") {
    event.preventDefault();
    recallUndo(index);
  } else if (event.key === "p" || event.key === "P") {
    event.preventDefault();
    if (recalled[index]) printTicket(recalled[index], event.shiftKey ? "receipt" : "kitchen");
  } else if (event.key === "r" || event.key === "R") {
    event.preventDefault();
    recallDialog.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Printed tickets: an 80 mm kitchen ticket or customer receipt, through the browser's printing
// (static/css/print.css prints only #print-area, on an 80 mm roll).

function printOnAccept() {
  try {
    return localStorage.getItem(PRINT_ON_ACCEPT_KEY) === "true";
  } catch {
    return false;
  }
}

function setupPrintSetting() {
  const box = document.getElementById("print-on-accept");
  box.checked = printOnAccept();
  box.addEventListener("change", () => {
    try {
      localStorage.setItem(PRINT_ON_ACCEPT_KEY, String(box.checked));
    } catch {
      // Private mode: the setting lasts this page.
    }
    announce(box.checked ? "A kitchen ticket prints when an order is accepted." : "No ticket on accept.");
  });
}

const ticketTime = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });

function printTicket(order, kind) {
  const area = document.getElementById("print-area");
  const items = Array.isArray(order.items) ? order.items : [];
  const placed = Date.parse(order.createdAt || "");
  const when = ticketTime.format(Number.isNaN(placed) ? serverNow() : placed);
  const lines = kind === "receipt"
    ? items.map((item) => h("tr", {}, h("td", { class: "t-qty", text: `${item.quantity}×` }), h("td", { text: item.name }),
      h("td", { class: "t-amount", text: item.total != null ? formatMoney(item.total) : "" })))
    : items.map((item) => h("tr", {}, h("td", { class: "t-qty", text: `${item.quantity}×` }), h("td", { class: "t-name", text: item.name })));
  const ticket = h("article", { class: `ticket ticket--${kind}` },
    h("p", { class: "t-store", text: kitchenStoreName || order.store?.name || "" }),
    h("p", { class: "t-kind", text: kind === "receipt" ? "Receipt" : "Kitchen ticket" }),
    h("p", { class: "t-number", text: `#${shortNumber(order.orderNumber)}` }),
    h("p", { class: "t-meta", text: `${order.orderNumber} · ${when}` }),
    order.customerFirstName ? h("p", { class: "t-meta", text: `For ${order.customerFirstName}` }) : "",
    h("table", { class: "t-lines" }, h("tbody", {}, ...lines)),
    order.specialInstructions ? h("p", { class: "t-note", text: `Note: ${order.specialInstructions}` }) : "",
    kind === "receipt" ? h("p", { class: "t-total", text: `Total ${formatMoney(order.totalAmount)}` }) : "",
    kind === "receipt" && (order.transactionId || order.paymentReference)
      ? h("p", { class: "t-meta", text: order.transactionId ? `UPI ${order.transactionId}` : `Ref ${order.paymentReference}` }) : "",
    kind === "receipt" ? h("p", { class: "t-thanks", text: "Thank you! Show your pickup code at the counter." }) : "");
  area.replaceChildren(ticket);
  document.body.dataset.printing = kind;
  document.body.dataset.printed = String(Number(document.body.dataset.printed || 0) + 1);
  announce(`Printing the ${kind === "receipt" ? "receipt" : "kitchen ticket"} of order ${shortNumber(order.orderNumber)}.`);
  window.print();
}

setInterval(() => {
  for (const card of cards.values()) card.tick();
}, 1_000);

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") for (const card of cards.values()) card.tick();
});

main();
