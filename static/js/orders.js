// The customer's list of orders, newest first, live: the socket's `{mine: true}` subscription brings
// every change of this customer's orders, and new orders from any page or partner app, without a reload.

import { api, ApiError, bindSignOut, isCustomer, requireSession } from "./api.js";
import { announce, formatDateTime, formatMoney, h, itemsSummary, STATUS_LABEL, TERMINAL } from "./format.js";
import { bindConnectionPill, LiveFeed, OrderStore } from "./live.js";
import { trustNotice } from "./trust.js";

const PAGE_SIZE = 20;
const list = document.getElementById("orders");
const more = document.getElementById("more");
const notices = document.getElementById("notices");
const store = new OrderStore();
const rows = new Map();
let page = 0;
let total = null;
let feed = null;

/** The list answer is `{success, data: [orders], pagination: {total, page, limit, totalPages}}`. */
function readPage(body) {
  const data = body?.data;
  const orders = Array.isArray(data) ? data : data?.orders || [];
  const count = Number(body?.pagination?.total ?? data?.total);
  return { orders, total: Number.isFinite(count) ? count : null };
}

async function loadPage() {
  more.disabled = true;
  try {
    const body = await api(`/api/orders?page=${page + 1}&limit=${PAGE_SIZE}`, { envelope: true });
    const { orders, total: count } = readPage(body);
    page += 1;
    total = count;
    for (const order of orders) store.apply(order);
    render();
    more.hidden = total != null ? store.orders.size >= total : orders.length < PAGE_SIZE;
    watchMine();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    list.removeAttribute("aria-busy");
    list.replaceChildren(h("div", { class: "notice notice--error", role: "alert" },
      h("div", {}, h("strong", { text: "Couldn't load your orders" }), error.message, " ",
        h("button", { class: "button button--quiet", type: "button", text: "Try again", onclick: () => { list.setAttribute("aria-busy", "true"); loadPage(); } }))));
  } finally {
    more.disabled = false;
  }
}

function row(order) {
  const link = h("a", { class: "order-row", href: `/track/${order.id}` });
  rows.set(order.id, link);
  fillRow(link, order);
  return h("li", {}, link);
}

function fillRow(link, order) {
  const status = order.orderStatus;
  link.dataset.status = status;
  link.replaceChildren(
    h("span", { class: "order-row__number", text: order.orderNumber || "Order" }),
    h("span", { class: "chip", dataset: { status }, text: STATUS_LABEL[status] || status }),
    h("span", { class: "order-row__items", text: itemsSummary(order.items) }),
    h("span", { class: "order-row__meta" },
      h("span", { text: [order.store?.name, formatDateTime(order.createdAt)].filter(Boolean).join(" · ") }),
      h("span", { class: "tabular", text: formatMoney(order.totalAmount) })),
  );
}

function byNewest(a, b) {
  return (Date.parse(b.createdAt) || 0) - (Date.parse(a.createdAt) || 0);
}

function render() {
  list.removeAttribute("aria-busy");
  rows.clear();
  const orders = store.values().sort(byNewest);
  if (!orders.length) {
    list.replaceChildren(h("div", { class: "card empty" },
      h("strong", { text: "No orders yet" }),
      "When you order from a campus outlet, it shows up here and you can follow it live. ",
      h("a", { href: "/stores", text: "See the open stores" })));
    return;
  }
  const active = orders.filter((order) => !TERMINAL.has(order.orderStatus));
  const past = orders.filter((order) => TERMINAL.has(order.orderStatus));
  const sections = [];
  if (active.length) {
    sections.push(h("h2", { class: "section-title", id: "active-heading", text: "In progress" }),
      h("ul", { class: "order-list", "aria-labelledby": "active-heading" }, active.map(row)));
  }
  if (past.length) {
    sections.push(h("h2", { class: active.length ? "section-title section-title--spaced" : "section-title", id: "past-heading", text: "Earlier" }),
      h("ul", { class: "order-list", "aria-labelledby": "past-heading" }, past.map(row)));
  }
  list.replaceChildren(...sections);
}

/** A new order arrives as a lean event: its items and store come from the full order. */
async function fetchDetails(orderId) {
  try {
    const result = store.fill(await api(`/api/orders/${orderId}`));
    if (result && rows.has(orderId)) fillRow(rows.get(orderId), result.order);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
}

function watchMine() {
  if (feed) return;
  feed = new LiveFeed({ subscription: { mine: true } });
  const pill = document.getElementById("conn");
  pill.hidden = false;
  bindConnectionPill(feed, pill, { compact: true });
  const onOrder = (order) => {
    const result = store.apply(order);
    if (!result) return;
    const { previous } = result;
    if (!previous) {
      announce(`New order ${result.order.orderNumber}: ${STATUS_LABEL[result.order.orderStatus]}`);
      if (total != null) total += 1;
      render();
      fetchDetails(order.id);
    } else if (previous.orderStatus !== result.order.orderStatus) {
      announce(`${result.order.orderNumber}: ${STATUS_LABEL[result.order.orderStatus]}`);
      render();
    } else if (rows.has(order.id)) {
      fillRow(rows.get(order.id), result.order);
    }
  };
  feed.addEventListener("snapshot", (event) => event.detail.orders.forEach(onOrder));
  feed.addEventListener("order", (event) => onOrder(event.detail.order));
  feed.start();
}

async function main() {
  const user = await requireSession(isCustomer);
  bindSignOut();
  document.getElementById("greeting").textContent = user?.name ? `Hi, ${user.name.split(" ")[0]}` : "";
  more.addEventListener("click", loadPage);
  api("/api/users/me")
    .then((me) => { const notice = trustNotice(me); if (notice) notices.append(notice); })
    .catch(() => {});
  await loadPage();
}

main();
