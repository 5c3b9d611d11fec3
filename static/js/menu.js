// One store's menu by category, live: the server pushes the whole menu on every change (a sold-out
// item, a new price, the store closing), over `GET /api/stores/{id}/menu/events`. The cart beside it
// is kept on the device (cart.js).

import { api, ApiError } from "./api.js";
import { changeQuantity, readCart, syncWithMenu, cartTotal, MAX_QUANTITY } from "./cart.js";
import { announce, formatMoney, h } from "./format.js";
import { bindConnectionPill } from "./live.js";
import { bindShopChrome } from "./shop.js";

const storeId = decodeURIComponent(window.location.pathname.split("/")[2] || "");
const menuBox = document.getElementById("menu");
const cartBox = document.getElementById("cart");
const closedBox = document.getElementById("store-closed");
let store = null;
let menu = [];
let revision = -1;

/** The connection pill's view of the event stream (the same states as the order feeds). */
const connection = Object.assign(new EventTarget(), { state: "connecting" });
function setConnection(state) {
  connection.state = state;
  connection.dispatchEvent(new CustomEvent("state", { detail: { state } }));
}

function byCategory(items) {
  const groups = new Map();
  for (const item of items) {
    const category = item.category || "More";
    if (!groups.has(category)) groups.set(category, []);
    groups.get(category).push(item);
  }
  return [...groups.entries()].sort(([a], [b]) => (a === "More") - (b === "More") || a.localeCompare(b));
}

function quantityOf(itemId) {
  const cart = readCart();
  return cart.storeId === storeId ? cart.lines.find((line) => line.id === itemId)?.quantity || 0 : 0;
}

function stepper(item, quantity, where) {
  const change = (delta) => {
    const before = readCart();
    if (before.storeId && before.storeId !== storeId && before.lines.length) {
      announce(`Started a new cart for ${store.name}.`);
    }
    changeQuantity(store, item, delta);
    announce(`${item.name}: ${quantityOf(item.id)} in your cart.`);
    render();
  };
  if (!quantity) {
    return h("button", { class: "button", type: "button", dataset: { key: `${where}-add-${item.id}` },
      "aria-label": `Add ${item.name}`, disabled: !orderable() || null, onclick: () => change(1), text: "Add" });
  }
  return h("span", { class: "stepper", role: "group", "aria-label": `${item.name} quantity` },
    h("button", { class: "button button--quiet", type: "button", dataset: { key: `${where}-less-${item.id}` },
      "aria-label": `One less ${item.name}`, onclick: () => change(-1), text: "−" }),
    h("output", { "aria-live": "off", text: String(quantity) }),
    h("button", { class: "button button--quiet", type: "button", dataset: { key: `${where}-more-${item.id}` },
      "aria-label": `One more ${item.name}`, disabled: quantity >= MAX_QUANTITY || !item.isAvailable || !orderable() || null,
      onclick: () => change(1), text: "+" }));
}

function renderMenu() {
  menuBox.removeAttribute("aria-busy");
  if (!menu.length) {
    menuBox.replaceChildren(h("div", { class: "card empty" }, h("strong", { text: "No items on the menu yet" })));
    return;
  }
  menuBox.replaceChildren(...byCategory(menu).map(([category, items], index) =>
    h("section", { class: "menu-section", "aria-labelledby": `category-${index}` },
      h("h2", { id: `category-${index}`, text: category }),
      h("ul", { class: "menu-items" }, items.map((item) =>
        h("li", { class: "menu-item", dataset: { available: String(item.isAvailable), itemId: item.id } },
          h("span", { class: "menu-item__name", text: item.name }),
          h("span", { class: "menu-item__price", text: formatMoney(item.price) }),
          item.isAvailable ? stepper(item, quantityOf(item.id), "menu")
            : h("span", { class: "sold-out", text: "Sold out" })))))));
}

function renderCart() {
  const cart = readCart();
  const mine = cart.storeId === storeId ? cart.lines : [];
  if (!mine.length) {
    const other = cart.lines.length ? h("p", { class: "muted" }, `Your cart has items from ${cart.storeName}. `,
      h("a", { href: `/stores/${cart.storeId}`, text: "Go back to it" }), ", or add from here to start a new one.") : null;
    cartBox.replaceChildren(h("p", { class: "muted", text: "Nothing here yet. Add something from the menu." }), other || "");
    return;
  }
  const byId = new Map(menu.map((item) => [item.id, item]));
  const unavailable = mine.filter((line) => !byId.get(line.id)?.isAvailable);
  const blocked = !orderable() || unavailable.length > 0;
  cartBox.replaceChildren(
    h("ul", { class: "cart-lines" }, mine.map((line) => {
      const item = byId.get(line.id) || { ...line, isAvailable: false };
      return h("li", { class: "cart-line" },
        h("span", { class: "cart-line__name" }, line.name,
          item.isAvailable ? "" : h("span", { class: "sold-out", text: " · Sold out" })),
        h("span", { class: "tabular", text: formatMoney(line.price * line.quantity) }),
        stepper(item, line.quantity, "cart"));
    })),
    h("p", { class: "cart-total" }, h("span", { text: "Total" }), h("span", { class: "tabular", text: formatMoney(cartTotal(cart)) })),
    unavailable.length ? h("p", { class: "notice notice--warn", role: "status",
      text: `Remove what is sold out to check out: ${unavailable.map((line) => line.name).join(", ")}.` }) : "",
    blocked
      ? h("button", { class: "button button--block button--large", type: "button", "aria-disabled": "true", id: "to-checkout", text: "Check out" })
      : h("a", { class: "button button--block button--large", href: "/checkout", id: "to-checkout", text: "Check out" }));
}

/** Where keyboard focus goes when the control it was on is replaced: "Add" becomes the stepper's
 * "+", and a stepper that went back to zero becomes "Add" again. */
function focusTargets(key) {
  const [where, kind, id] = key.split("-");
  const next = { add: ["add", "more"], more: ["more", "less", "add"], less: ["less", "more", "add"] }[kind] || [kind];
  return next.map((target) => `${where}-${target}-${id}`).concat(where === "cart" ? [`menu-add-${id}`] : []);
}

function render() {
  const focused = document.activeElement?.dataset?.key;
  renderMenu();
  renderCart();
  if (!focused) return;
  for (const key of focusTargets(focused)) {
    const target = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (target && !target.disabled) {
      target.focus();
      return;
    }
  }
}

function takeMenu(snapshot) {
  if (snapshot.revision <= revision) return;
  const wasOpen = store?.isActive;
  const wasPaused = store?.isPaused;
  const before = new Map(menu.map((item) => [item.id, item]));
  revision = snapshot.revision;
  store = snapshot.store;
  menu = snapshot.menu;
  document.getElementById("store-name").textContent = store.name;
  document.getElementById("store-meta").textContent = store.location;
  document.title = `${store.name} · OrderPulse`;
  closedBox.hidden = orderable();
  closedBox.textContent = !store.isActive
    ? `${store.name} is closed right now. You can look at the menu, but not order until it opens.`
    : store.isPaused ? `${store.name} has paused new orders for a few minutes. Your cart is kept; try again shortly.` : "";
  if (wasPaused != null && wasPaused !== store.isPaused && store.isActive) {
    announce(store.isPaused ? `${store.name} paused new orders.` : `${store.name} is taking orders again.`);
  }
  showCapacity(store.capacity);
  loadWait();
  syncWithMenu(storeId, menu);
  if (wasOpen != null && wasOpen !== store.isActive) announce(store.isActive ? `${store.name} is open again.` : `${store.name} just closed.`);
  for (const item of menu) {
    const old = before.get(item.id);
    if (old && old.isAvailable && !item.isAvailable) announce(`${item.name} is sold out.`);
  }
  render();
}

/** True while the store takes new orders: open and not paused by its kitchen. */
function orderable() {
  return Boolean(store && store.isActive && !store.isPaused);
}

// "About 15 min wait now": the store's estimate for an order placed now, read with the store and
// again every minute (the queue moves with every order, the menu stream only with the menu).
let waitTimer = null;
async function loadWait() {
  clearTimeout(waitTimer);
  const box = document.getElementById("store-wait");
  try {
    const current = await api(`/api/stores/${encodeURIComponent(storeId)}`, { auth: false });
    box.hidden = !orderable() || !current.waitMinutes;
    box.textContent = box.hidden ? "" : `About ${current.waitMinutes} min wait now`;
    showCapacity(current.capacity);
  } catch {
    box.hidden = true;
  }
  waitTimer = setTimeout(loadWait, 60_000);
}

// A store's cap on items per 15-minute slot (issue 27): while its current slot is full, new orders
// go to a later one, or none is taken; it follows the catalog events, so it reopens by itself.
const SLOT_MS = 15 * 60_000;
const slotTime = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
let lastCapacity = null;
function showCapacity(capacity) {
  let box = document.getElementById("store-capacity");
  if (!box) {
    box = h("p", { class: "notice notice--info", id: "store-capacity", role: "status", hidden: true });
    document.getElementById("store-wait").after(box);
  }
  const deferring = Boolean(capacity && capacity.deferring && orderable());
  const text = !deferring ? ""
    : capacity.nextFreeSlot
      ? `The kitchen is busy: orders placed now are ready around ${slotTime.format(Date.parse(capacity.nextFreeSlot) + SLOT_MS)}.`
      : `${store.name} is fully booked for the next hour. It takes orders again by itself as the kitchen catches up.`;
  box.hidden = !deferring;
  box.textContent = text;
  if (lastCapacity !== null && lastCapacity !== text) announce(text || `${store.name} is taking orders for now again.`);
  lastCapacity = text;
}

async function showMissingStore() {
  let message = "This store could not be loaded.";
  try {
    await api(`/api/stores/${encodeURIComponent(storeId)}`, { auth: false });
  } catch (error) {
    if (error instanceof ApiError) message = error.message;
  }
  menuBox.removeAttribute("aria-busy");
  menuBox.replaceChildren(h("div", { class: "notice notice--error", role: "alert" },
    h("div", {}, h("strong", { text: message }), " ", h("a", { href: "/stores", text: "See the open stores" }))));
}

function follow() {
  const events = new EventSource(`/api/stores/${encodeURIComponent(storeId)}/menu/events`);
  events.addEventListener("menu", (event) => {
    setConnection("live");
    takeMenu(JSON.parse(event.data));
  });
  events.addEventListener("open", () => setConnection("live"));
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) {
      setConnection("offline");
      if (!store) showMissingStore();
    } else {
      setConnection("reconnecting");
    }
  });
}

bindShopChrome();
bindConnectionPill(connection, document.getElementById("conn"), { compact: true });
window.addEventListener("storage", () => store && render());
follow();
