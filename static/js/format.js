// Words and numbers shown to people: status names, cancellation reasons, money, durations.

export const STATUS_FLOW = ["placed", "accepted", "processing", "ready", "picked_up"];
export const TERMINAL = new Set(["picked_up", "cancelled"]);
export const ACTIVE_STATUSES = ["placed", "accepted", "processing", "ready"];

export const STATUS_LABEL = {
  placed: "Order placed",
  accepted: "Accepted",
  processing: "Preparing",
  ready: "Ready for pickup",
  picked_up: "Picked up",
  cancelled: "Cancelled",
};

export const PAYMENT_LABEL = {
  pending: "Payment pending",
  success: "Paid",
  failed: "Payment failed",
};

const CUSTOMER_REASON = {
  payment_timeout: "The store couldn't verify your payment in time, so the order was cancelled. If you were charged, show your UPI receipt at the counter.",
  payment_failed: "The store couldn't find your payment, so the order was cancelled. If you were charged, show your UPI receipt at the counter.",
  commitment_timeout: "You didn't confirm you were on your way before the deadline, so the order was cancelled and counted as a no-show.",
  no_show_timeout: "The order wasn't collected in time after it was ready, so it was cancelled and counted as a no-show.",
  customer_cancelled: "You cancelled this order.",
  store_cancelled: "The store cancelled this order. Please ask at the counter if you have already paid.",
};

const KITCHEN_REASON = {
  payment_timeout: "Payment not verified in time",
  payment_failed: "Payment failed",
  commitment_timeout: "Customer didn't confirm in time",
  no_show_timeout: "Not collected in time (no-show)",
  customer_cancelled: "Cancelled by customer",
  store_cancelled: "Cancelled by store",
};

export function cancellationText(reason, audience = "customer") {
  const table = audience === "kitchen" ? KITCHEN_REASON : CUSTOMER_REASON;
  return table[reason] || (audience === "kitchen" ? "Cancelled" : "This order was cancelled.");
}

const money = new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR", minimumFractionDigits: 0, maximumFractionDigits: 2 });

export function formatMoney(amount) {
  const value = Number(amount);
  if (!Number.isFinite(value)) return "—";
  // Whole rupees without decimals, anything else with exactly two.
  return Number.isInteger(value)
    ? money.format(value)
    : new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR", minimumFractionDigits: 2 }).format(value);
}

/** "4:05" or "1:02:09"; negative values show as "0:00". */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

/** "4 minutes 5 seconds", for screen readers. */
export function spokenDuration(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  const parts = [];
  if (minutes) parts.push(`${minutes} minute${minutes === 1 ? "" : "s"}`);
  if (seconds || !minutes) parts.push(`${seconds} second${seconds === 1 ? "" : "s"}`);
  return parts.join(" ");
}

/** Age for the kitchen: "just now", "45 s", "7 min", "1 h 12 min". */
export function formatAge(ms) {
  if (ms == null) return "";
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "numeric", minute: "2-digit" });
const longDateFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "long", year: "numeric", hour: "numeric", minute: "2-digit" });

export function formatTime(iso) {
  const at = Date.parse(iso || "");
  return Number.isNaN(at) ? "" : timeFormat.format(at);
}

export function formatDateTime(iso) {
  const at = Date.parse(iso || "");
  if (Number.isNaN(at)) return "";
  const sameDay = new Date(at).toDateString() === new Date().toDateString();
  return sameDay ? `Today, ${timeFormat.format(at)}` : dateTimeFormat.format(at);
}

export function formatLongDate(value) {
  const at = value instanceof Date ? value.getTime() : Date.parse(value || "");
  return Number.isNaN(at) ? "" : longDateFormat.format(at);
}

/** The short number a kitchen calls out: "ORD-20240318-007" → "007". */
export function shortNumber(orderNumber) {
  const match = /(\d+)$/.exec(orderNumber || "");
  return match ? match[1] : orderNumber || "";
}

export function itemsSummary(items) {
  if (!Array.isArray(items) || !items.length) return "";
  return items.map((item) => `${item.quantity} × ${item.name}`).join(", ");
}

/** Build an element: h("li", {class: "x", dataset: {id}}, child, "text"). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A polite screen-reader announcement through the page's `#announcer` live region. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  // Clearing first makes repeated identical messages announce again.
  region.textContent = "";
  window.setTimeout(() => { region.textContent = message; }, 60);
}
