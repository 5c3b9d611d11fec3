// Checkout: the cart priced by the server (`POST /api/orders/checkout-session`), the no-show policy
// for this customer, the direct-to-store UPI payment step, then `POST /api/orders`. The session is
// kept for this tab, so a reload or a second tap places the same checkout (the API answers with the
// one order it already made for that checkout token) instead of a new one.

import { api, ApiError, isCustomer, requireSession } from "./api.js";
import { clearCart, readCart } from "./cart.js";
import { announce, formatCountdown, formatMoney, formatTime, h, spokenDuration } from "./format.js";
import { bindShopChrome } from "./shop.js";

const CHECKOUT_KEY = "orderpulse.checkout";
const view = document.getElementById("view");
let countdown = null;

function cartKey(cart) {
  return JSON.stringify([cart.storeId, cart.lines.map((line) => [line.id, line.quantity])]);
}

function readStored() {
  try {
    return JSON.parse(sessionStorage.getItem(CHECKOUT_KEY) || "null");
  } catch {
    return null;
  }
}

function store(entry) {
  sessionStorage.setItem(CHECKOUT_KEY, JSON.stringify(entry));
}

function show(...children) {
  view.removeAttribute("aria-busy");
  view.replaceChildren(...children);
}

function problem(title, message, { back = true } = {}) {
  const cart = readCart();
  show(h("div", { class: "notice notice--error", role: "alert", id: "checkout-error" },
    h("div", {}, h("strong", { text: title }), message, " ",
      back && cart.storeId ? h("a", { href: `/stores/${cart.storeId}`, text: "Back to the menu" }) : "")));
}

async function newSession(cart) {
  const body = { storeId: cart.storeId, items: cart.lines.map((line) => ({ menuItemId: line.id, quantity: line.quantity })) };
  const data = await api("/api/orders/checkout-session", { method: "POST", body });
  const entry = { cartKey: cartKey(cart), session: data, expiresAt: Date.now() + data.expiresInSeconds * 1000 };
  store(entry);
  return entry;
}

function policyNotice(policy) {
  if (policy.requiresCommitment) {
    return h("div", { class: "notice notice--warn", role: "status", id: "policy-notice", dataset: { tier: policy.trustTier } },
      h("div", {}, h("strong", { text: "You'll need to confirm you're coming" }),
        `Because of ${policy.noShowCount} missed pickup${policy.noShowCount === 1 ? "" : "s"}, this order waits for your “I'm on my way” on its tracking page: confirm within ${policy.commitmentWindowMinutes} minutes of placing it, or it is cancelled.`));
  }
  return h("p", { class: "muted", id: "policy-notice", dataset: { tier: policy.trustTier },
    text: `Pay within ${policy.unpaidTimeoutMinutes} minutes, and collect within ${policy.readyTimeoutMinutes} minutes of the order being ready; a missed pickup counts against ordering later.` });
}

// A store capping what it takes per 15-minute slot sends a checkout past a full slot to the next
// one with room: say so before the customer pays, with the time that slot is ready around.
function slotNotice(slot) {
  if (!slot?.deferred || !slot.readyAround) return null;
  return h("div", { class: "notice notice--info", role: "status", id: "slot-notice" },
    h("div", {}, h("strong", { text: `Ready around ${formatTime(slot.readyAround)}` }),
      "The kitchen is full for the next few minutes, so this order takes the next free slot."));
}

function renderSession(entry) {
  const { session } = entry;
  const link = session.payment.upiLink;
  const timeLeft = h("span", { class: "time-left", id: "time-left", role: "timer", "aria-live": "off" });
  const txn = h("input", { type: "text", id: "transaction-id", name: "transactionId", autocomplete: "off",
    maxlength: "40", "aria-describedby": "transaction-hint" });
  const txnError = h("span", { class: "field__error", id: "transaction-error", role: "alert", hidden: true });
  const place = h("button", { class: "button button--block button--large", type: "submit", id: "place-order", text: "Place order" });
  const placeError = h("p", { class: "notice notice--error", id: "place-error", role: "alert", hidden: true });
  const form = h("form", { class: "card pay-box", id: "pay-form", novalidate: true, "aria-labelledby": "pay-heading" },
    h("h2", { class: "section-title", id: "pay-heading", text: "Pay the store by UPI" }),
    h("p", {}, `Pay ${formatMoney(session.totalAmount)} to ${session.store.name} (${session.store.upiId}) with the note `,
      h("span", { class: "pay-ref", text: session.paymentReference }), ". The store checks the payment before preparing your order."),
    h("a", { class: "button button--block", href: link, id: "upi-link", text: "Open your UPI app" }),
    h("figure", { class: "pay-qr-figure" },
      h("img", { class: "pay-qr", id: "upi-qr", src: `/api/payments/upi-qr?${new URLSearchParams({ link })}`,
        alt: `QR code to pay ${formatMoney(session.totalAmount)} to ${session.store.name} by UPI`, width: "220", height: "220" }),
      h("figcaption", { class: "muted", text: "Paying from another phone? Scan this code." })),
    h("label", { class: "field" }, h("span", { class: "field__label", text: "UPI transaction ID (optional)" }), txn,
      h("span", { class: "field__hint", id: "transaction-hint", text: "From your UPI app after paying; it helps the store find your payment." }),
      txnError),
    h("p", {}, "This checkout is held for ", timeLeft, "."),
    placeError,
    place);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (place.disabled) return;
    txnError.hidden = true;
    placeError.hidden = true;
    txn.removeAttribute("aria-invalid");
    place.disabled = true;
    place.textContent = "Placing your order…";
    const body = { checkoutToken: session.checkoutToken };
    if (txn.value.trim()) body.transactionId = txn.value.trim();
    try {
      const order = await api("/api/orders", { method: "POST", body });
      store({ ...entry, orderId: order.id });
      clearCart();
      window.location.assign(`/track/${order.id}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      place.disabled = false;
      place.textContent = "Place order";
      if (/transaction/i.test(error.message)) {
        txnError.textContent = error.message;
        txnError.hidden = false;
        txn.setAttribute("aria-invalid", "true");
        txn.setAttribute("aria-errormessage", "transaction-error");
        txn.focus();
      } else {
        placeError.textContent = error.message;
        placeError.hidden = false;
        placeError.focus?.();
      }
    }
  });

  const items = h("section", { class: "card", "aria-labelledby": "summary-heading" },
    h("h2", { class: "section-title", id: "summary-heading", text: `Your order from ${session.store.name}` }),
    h("ul", { class: "items" }, session.items.map((item) =>
      h("li", {}, h("span", { class: "items__qty", text: `${item.quantity} ×` }), h("span", { text: item.name }),
        h("span", { class: "tabular", text: formatMoney(item.total) })))),
    h("p", { class: "cart-total" }, h("span", { text: "Total" }), h("span", { class: "tabular", id: "checkout-total", text: formatMoney(session.totalAmount) })),
    slotNotice(session.slot),
    policyNotice(session.noShowPolicy));
  show(items, form);

  const tick = () => {
    const left = entry.expiresAt - Date.now();
    if (left <= 0) {
      clearInterval(countdown);
      sessionStorage.removeItem(CHECKOUT_KEY);
      place.disabled = true;
      timeLeft.textContent = "0:00";
      placeError.replaceChildren("This checkout expired. ",
        h("button", { class: "button button--quiet", type: "button", text: "Start again", onclick: () => main() }));
      placeError.hidden = false;
      announce("This checkout expired.");
      return;
    }
    timeLeft.textContent = formatCountdown(left);
    timeLeft.setAttribute("aria-label", spokenDuration(left));
  };
  clearInterval(countdown);
  countdown = setInterval(tick, 1000);
  tick();
}

async function main() {
  const cart = readCart();
  const stored = readStored();
  // Placed already (a reload, the back button): that checkout has its one order.
  if (stored?.orderId && (!cart.lines.length || stored.cartKey === cartKey(cart))) {
    window.location.replace(`/track/${stored.orderId}`);
    return;
  }
  if (!cart.lines.length) {
    show(h("div", { class: "card empty" }, h("strong", { text: "Your cart is empty" }),
      h("a", { href: "/stores", text: "Choose a store" }), " and add something from its menu."));
    return;
  }
  view.setAttribute("aria-busy", "true");
  try {
    const reuse = stored && stored.cartKey === cartKey(cart) && stored.expiresAt - Date.now() > 5000;
    renderSession(reuse ? stored : await newSession(cart));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 403) {
      // Seed 001: a restricted customer is told until when, and cannot go on.
      problem("You can't place orders right now", ` ${error.message}`, { back: false });
    } else {
      problem("This cart can't be checked out", ` ${error.message}`);
    }
  }
}

bindShopChrome();
requireSession(isCustomer).then(() => main());
