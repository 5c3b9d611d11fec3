// The admin console: stores, their menus, staff accounts, customers' trust, partner clients and
// their webhook endpoints,
// each action one call of an admins-only API route.

import { api, ApiError, bindSignOut, requireSession } from "./api.js";
import { announce, h } from "./format.js";

const flash = document.getElementById("flash");
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
let stores = [];

function when(iso) {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

function say(message, error = false) {
  flash.textContent = message;
  flash.className = `notice ${error ? "notice--error" : "notice--info"}`;
  flash.hidden = false;
  announce(message);
}

function messageOf(error) {
  return error instanceof ApiError ? error.message : "Something went wrong. Please try again.";
}

/** Run one action; its failure is shown in `box` (a form's error box) or the page's notice. */
async function act(work, box = null) {
  if (box) box.hidden = true;
  try {
    return await work();
  } catch (error) {
    if (box) {
      box.textContent = messageOf(error);
      box.hidden = false;
    } else {
      say(messageOf(error), true);
    }
    return undefined;
  }
}

function busy(button, work) {
  return async (...args) => {
    button.disabled = true;
    try {
      await work(...args);
    } finally {
      button.disabled = false;
    }
  };
}

/** A typed price as the API reads it: a number when it is one, else the text (refused by name). */
function priceOf(text) {
  const raw = text.trim();
  const value = Number(raw);
  return raw === "" ? null : Number.isFinite(value) ? value : raw;
}

function pill(kind, text) {
  return h("span", { class: `pill pill--${kind}`, text });
}

// ---------------------------------------------------------------------------------------------
// Stores

const storeForm = document.getElementById("store-form");
const storeSubmit = document.getElementById("store-submit");
const storeCancel = document.getElementById("store-cancel");

async function loadStores() {
  stores = await api("/api/admin/stores");
  const body = document.querySelector("#store-table tbody");
  body.replaceChildren(...stores.map((store) => {
    const toggle = h("button", { class: "button button--quiet", type: "button",
      text: store.isActive ? "Close" : "Open", "aria-label": `${store.isActive ? "Close" : "Open"} ${store.name}` });
    toggle.addEventListener("click", busy(toggle, () => setStoreOpen(store, !store.isActive)));
    const edit = h("button", { class: "button button--quiet", type: "button", text: "Edit", "aria-label": `Edit ${store.name}` });
    edit.addEventListener("click", () => editStore(store));
    const menu = h("a", { class: "button button--quiet", href: "#menu", text: "Menu", "aria-label": `Menu of ${store.name}` });
    menu.addEventListener("click", () => { menuStore.value = store.id; loadMenu(); });
    return h("tr", { dataset: { storeId: store.id } },
      h("td", {}, h("strong", { text: store.name }), h("span", { class: "muted", text: store.location }),
        h("code", { class: "muted", text: store.upiId })),
      h("td", {}, store.isActive ? pill("open", "Open") : pill("closed", "Closed")),
      h("td", {}, edit, toggle, menu));
  }));
  fillStoreSelects();
}

function fillStoreSelects() {
  for (const select of [menuStore, document.getElementById("staff-store")]) {
    const chosen = select.value;
    select.replaceChildren(...stores.map((store) => h("option", { value: store.id, text: store.name })));
    if (stores.some((store) => store.id === chosen)) select.value = chosen;
  }
}

async function setStoreOpen(store, open) {
  const done = await act(() => api(`/api/stores/${store.id}`, { method: "PATCH", body: { isActive: open } }));
  if (done) {
    say(`${store.name} is now ${open ? "open" : "closed"}.`);
    await loadStores();
  }
}

function editStore(store) {
  storeForm.storeId.value = store.id;
  storeForm.name.value = store.name;
  storeForm.location.value = store.location;
  storeForm.upiId.value = store.upiId;
  storeForm.description.value = store.description || "";
  document.getElementById("store-form-title").textContent = `Edit ${store.name}`;
  storeSubmit.textContent = "Save changes";
  storeCancel.hidden = false;
  storeForm.name.focus();
}

function resetStoreForm() {
  storeForm.reset();
  storeForm.storeId.value = "";
  document.getElementById("store-form-title").textContent = "New store";
  storeSubmit.textContent = "Create store";
  storeCancel.hidden = true;
}

storeCancel.addEventListener("click", resetStoreForm);
storeForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = storeForm.storeId.value;
  const body = { name: storeForm.name.value, location: storeForm.location.value, upiId: storeForm.upiId.value,
    description: storeForm.description.value };
  storeSubmit.disabled = true;
  const saved = await act(() => api(id ? `/api/stores/${id}` : "/api/stores",
    { method: id ? "PATCH" : "POST", body }), storeForm.querySelector(".form-error"));
  storeSubmit.disabled = false;
  if (!saved) return;
  say(id ? `Saved ${saved.name}.` : `Created ${saved.name}.`);
  resetStoreForm();
  await loadStores();
});

// ---------------------------------------------------------------------------------------------
// A store's menu

const menuStore = document.getElementById("menu-store");
const itemForm = document.getElementById("item-form");

async function loadMenu() {
  const storeId = menuStore.value;
  const body = document.querySelector("#menu-table tbody");
  if (!storeId) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "4", class: "muted", text: "Create a store first." })));
    return;
  }
  const items = await api(`/api/stores/${storeId}/menu?all=true`, { auth: false });
  if (!items.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "4", class: "muted", text: "No items yet." })));
    return;
  }
  body.replaceChildren(...items.map((item) => {
    const name = h("input", { type: "text", value: item.name, maxlength: "100", "aria-label": `Name of ${item.name}` });
    const category = h("input", { type: "text", value: item.category || "", maxlength: "50", placeholder: "—", "aria-label": `Category of ${item.name}` });
    const price = h("input", { type: "text", inputmode: "decimal", value: String(item.price), "aria-label": `Price of ${item.name} in rupees` });
    const save = h("button", { class: "button button--quiet", type: "button", text: "Save", "aria-label": `Save ${item.name}` });
    // Only what changed is sent (a blank category is left as it was: the API refuses blank text).
    save.addEventListener("click", busy(save, () => {
      const changes = {};
      if (name.value.trim() !== item.name) changes.name = name.value;
      if (category.value.trim() !== (item.category || "") && category.value.trim()) changes.category = category.value;
      if (String(priceOf(price.value)) !== String(item.price)) changes.price = priceOf(price.value);
      return Object.keys(changes).length ? patchItem(item, changes) : say("Nothing to save.");
    }));
    const available = h("input", { type: "checkbox", "aria-label": `${item.name} available` });
    available.checked = item.isAvailable;
    available.addEventListener("change", () => patchItem(item, { isAvailable: available.checked }));
    return h("tr", { dataset: { itemId: item.id } },
      h("td", {}, name),
      h("td", {}, category),
      h("td", {}, price, save),
      h("td", {}, available));
  }));
}

async function patchItem(item, changes) {
  const saved = await act(() => api(`/api/menu/${item.id}`, { method: "PATCH", body: changes }));
  if (saved) say(`${saved.name}: ${saved.isAvailable ? "available" : "sold out"}, ₹${saved.price}.`);
  await loadMenu();
}

menuStore.addEventListener("change", loadMenu);
itemForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { name: itemForm.name.value, price: priceOf(itemForm.price.value) };
  if (itemForm.category.value.trim()) body.category = itemForm.category.value;
  const saved = await act(() => api(`/api/stores/${menuStore.value}/menu`, { method: "POST", body }),
    itemForm.querySelector(".form-error"));
  if (!saved) return;
  say(`Added ${saved.name}.`);
  itemForm.reset();
  itemForm.name.focus();
  await loadMenu();
});

// ---------------------------------------------------------------------------------------------
// Staff accounts

const staffForm = document.getElementById("staff-form");

async function loadStaff() {
  const page = await api("/api/admin/users?role=store_employee&limit=100");
  const names = Object.fromEntries(stores.map((store) => [store.id, store.name]));
  const body = document.querySelector("#staff-table tbody");
  if (!page.users.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "4", class: "muted", text: "No staff accounts yet." })));
    return;
  }
  body.replaceChildren(...page.users.map((user) => {
    const toggle = h("button", { class: "button button--quiet", type: "button",
      text: user.isActive ? "Disable" : "Enable", "aria-label": `${user.isActive ? "Disable" : "Enable"} ${user.email}` });
    toggle.addEventListener("click", busy(toggle, async () => {
      const done = await act(() => api(`/api/admin/users/${user.id}`, { method: "PATCH", body: { isActive: !user.isActive } }));
      if (done) say(`${user.email} is ${done.isActive ? "enabled" : "disabled and signed out everywhere"}.`);
      await loadStaff();
    }));
    return h("tr", { dataset: { userId: user.id } },
      h("td", { text: user.name }), h("td", {}, h("code", { text: user.email })),
      user.awaitingStore ? assignCell(user)
        : h("td", { text: `Store staff · ${names[user.storeId] || "unknown store"}` }),
      h("td", {}, user.isActive ? pill("open", "Active") : pill("closed", "Disabled"), " ", toggle));
  }));
}

/** A store employee who signed up: the store they named, and the control that assigns one. */
function assignCell(user) {
  const choice = h("select", { "aria-label": `Store for ${user.email}` },
    ...stores.map((store) => h("option", { value: store.id, text: store.name })));
  const assign = h("button", { class: "button button--quiet", type: "button", text: "Assign",
    "aria-label": `Assign ${user.email} to the chosen store` });
  assign.addEventListener("click", busy(assign, async () => {
    const done = await act(() => api(`/api/admin/users/${user.id}/role`, { method: "PUT",
      body: { role: "store_employee", storeId: choice.value } }));
    if (done) say(`${user.email} now runs ${choice.selectedOptions[0]?.textContent || "the store"}.`);
    await loadStaff();
  }));
  const asked = user.requestedStore ? ` · named “${user.requestedStore}”` : "";
  return h("td", {}, pill("closed", "Awaiting a store"), h("span", { class: "muted", text: asked }), " ",
    choice, " ", assign);
}

staffForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { name: staffForm.name.value, email: staffForm.email.value, password: staffForm.password.value,
    role: "store_employee", storeId: staffForm.storeId.value || null };
  const saved = await act(() => api("/api/admin/users", { method: "POST", body }), staffForm.querySelector(".form-error"));
  if (!saved) return;
  say(`Created ${saved.email}. They sign in at /login and land on the kitchen display.`);
  staffForm.reset();
  await loadStaff();
});

// ---------------------------------------------------------------------------------------------
// Customers and their no-shows

const searchForm = document.getElementById("customer-search");
const noShowPanel = document.getElementById("no-shows");

async function loadCustomers() {
  const query = new URLSearchParams({ limit: "50" });
  if (searchForm.search.value.trim()) query.set("search", searchForm.search.value.trim());
  const page = await act(() => api(`/api/admin/customers?${query}`));
  if (!page) return;
  const body = document.querySelector("#customer-table tbody");
  if (!page.customers.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "5", class: "muted", text: "No customers found." })));
    return;
  }
  body.replaceChildren(...page.customers.map((customer) => {
    const details = h("button", { class: "button button--quiet", type: "button", text: "No-shows",
      "aria-label": `No-shows of ${customer.email}` });
    details.addEventListener("click", () => showNoShows(customer.id));
    return h("tr", { dataset: { userId: customer.id } },
      h("td", {}, h("strong", { text: customer.name }), h("span", { class: "muted", text: `${customer.email} · ${customer.role}` })),
      h("td", {}, pill(customer.trustTier, customer.trustTier)),
      h("td", { text: String(customer.noShowCount) }),
      h("td", { text: when(customer.orderingRestrictedUntil) }),
      h("td", {}, details));
  }));
}

async function showNoShows(userId) {
  const data = await act(() => api(`/api/admin/customers/${userId}/no-shows`));
  if (!data) return;
  const { customer, noShows } = data;
  const heading = h("h3", { text: `${customer.name}: ${customer.trustTier}, ${customer.noShowCount} no-show${customer.noShowCount === 1 ? "" : "s"}` });
  const list = noShows.length ? h("ul", {}, ...noShows.map((entry) => noShowEntry(entry, userId)))
    : h("p", { class: "muted", text: "No no-shows recorded." });
  noShowPanel.replaceChildren(heading, list);
  noShowPanel.hidden = false;
  noShowPanel.focus();
}

function noShowEntry(entry, userId) {
  const title = h("span", { text: `Order ${entry.orderNumber} · recorded ${when(entry.recordedAt)}` });
  if (entry.clearedAt) {
    return h("li", {}, title, h("span", { class: "muted", text: ` · cleared ${when(entry.clearedAt)} by ${entry.clearedByName || "an admin"}: ${entry.clearedReason}` }));
  }
  const reason = h("input", { name: "reason", required: true, maxlength: "300", autocomplete: "off" });
  const box = h("div", { class: "form-error notice notice--error", role: "alert", hidden: true });
  const form = h("form", { novalidate: true },
    h("label", { class: "field" }, h("span", { class: "field__label", text: `Why order ${entry.orderNumber} was no no-show` }), reason),
    h("button", { class: "button", type: "submit", text: "Clear no-show" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const done = await act(() => api(`/api/admin/orders/${entry.orderId}/clear-no-show`,
      { method: "POST", body: { reason: reason.value } }), box);
    if (!done) return;
    say(`Cleared the no-show of order ${entry.orderNumber}; ${done.customer.name} is now ${done.customer.trustTier}.`);
    await Promise.all([showNoShows(userId), loadCustomers()]);
  });
  return h("li", {}, title, form, box);
}

searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  loadCustomers();
});

// ---------------------------------------------------------------------------------------------
// Partner clients

const clientForm = document.getElementById("client-form");

async function loadClients() {
  const clients = await api("/api/admin/clients");
  const body = document.querySelector("#client-table tbody");
  if (!clients.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "4", class: "muted", text: "No partner clients yet." })));
    return;
  }
  body.replaceChildren(...clients.map((client) => {
    const cells = [h("td", { text: client.name }), h("td", {}, h("code", { text: client.clientId })),
      h("td", {}, client.isActive ? pill("open", "Active") : pill("closed", `Revoked ${when(client.revokedAt)}`))];
    const actions = h("td", {});
    if (client.isActive) {
      const revoke = h("button", { class: "button button--quiet", type: "button", text: "Revoke", "aria-label": `Revoke ${client.name}` });
      revoke.addEventListener("click", busy(revoke, async () => {
        if (!window.confirm(`Revoke ${client.name}? Its /v1 requests are refused from now on.`)) return;
        const done = await act(() => api(`/api/admin/clients/${encodeURIComponent(client.clientId)}/revoke`, { method: "POST" }));
        if (done) say(`Revoked ${client.name}.`);
        await loadClients();
      }));
      actions.append(revoke);
    }
    return h("tr", { dataset: { clientId: client.clientId } }, ...cells, actions);
  }));
}

clientForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const saved = await act(() => api("/api/admin/clients", { method: "POST", body: { name: clientForm.name.value } }),
    clientForm.querySelector(".form-error"));
  if (!saved) return;
  say(`Created ${saved.name}: its client id is ${saved.clientId}.`);
  clientForm.reset();
  await loadClients();
});

// ---------------------------------------------------------------------------------------------
// Webhooks

const webhookForm = document.getElementById("webhook-form");
const webhookSecret = document.getElementById("webhook-secret");
const webhookLog = document.getElementById("webhook-log");

/** A signing secret is shown once, here, until the next action. */
function showSecret(endpointId, secret) {
  webhookSecret.replaceChildren(`Signing secret of ${endpointId}, shown only now; hand it to the partner:`,
    h("code", { text: secret }));
  webhookSecret.hidden = false;
}

function endpointStatus(endpoint) {
  if (endpoint.enabled) return pill("open", endpoint.secretsSigning > 1 ? "Enabled, rotating" : "Enabled");
  return h("span", {}, pill("closed", `Disabled ${when(endpoint.disabledAt)}`),
    h("span", { class: "muted", text: endpoint.disabledReason || "" }));
}

function endpointButton(text, label, work) {
  const button = h("button", { class: "button button--quiet", type: "button", text, "aria-label": label });
  button.addEventListener("click", busy(button, work));
  return button;
}

async function loadWebhooks() {
  const endpoints = await api("/api/admin/webhooks");
  const body = document.querySelector("#webhook-table tbody");
  if (!endpoints.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "6", class: "muted", text: "No webhook endpoints yet." })));
    return;
  }
  body.replaceChildren(...endpoints.map((endpoint) => {
    const id = endpoint.endpointId;
    const path = `/api/admin/webhooks/${encodeURIComponent(id)}`;
    const actions = h("td", {},
      endpointButton("Log", `Delivery log of ${id}`, () => showLog(endpoint)),
      endpointButton("Rotate secret", `Rotate secret of ${id}`, async () => {
        if (!window.confirm(`Rotate the secret of ${id}? The old one keeps signing during the grace period.`)) return;
        const done = await act(() => api(`${path}/rotate`, { method: "POST" }));
        if (done) showSecret(id, done.secret);
        await loadWebhooks();
      }),
      endpointButton("Remove", `Remove ${id}`, async () => {
        if (!window.confirm(`Remove ${id} and its delivery log? The partner gets no more events there.`)) return;
        if (await act(() => api(path, { method: "DELETE" })) !== undefined) say(`Removed ${id}.`);
        await loadWebhooks();
      }));
    if (!endpoint.enabled) {
      actions.prepend(endpointButton("Enable", `Enable ${id}`, async () => {
        if (await act(() => api(`${path}/enable`, { method: "POST" }))) say(`Enabled ${id}: its pending deliveries go out.`);
        await loadWebhooks();
      }));
    }
    return h("tr", { dataset: { endpointId: id } },
      h("td", {}, h("code", { text: id }), h("span", { class: "muted", text: endpoint.url })),
      h("td", {}, h("code", { text: endpoint.clientId })),
      h("td", { text: endpoint.events.length ? endpoint.events.join(", ") : "all" }),
      h("td", {}, endpointStatus(endpoint)),
      h("td", { text: `${endpoint.pendingDeliveries} pending, ${endpoint.failedDeliveries} failed` }),
      actions);
  }));
}

function attemptLine(attempt) {
  const outcome = attempt.statusCode ? `${attempt.statusCode}` : "no answer";
  return h("li", { text: `${when(attempt.at)}: ${outcome} in ${attempt.latencyMs} ms${attempt.error ? ` (${attempt.error})` : ""}` });
}

async function showLog(endpoint) {
  const id = endpoint.endpointId;
  const path = `/api/admin/webhooks/${encodeURIComponent(id)}`;
  const log = await act(() => api(`${path}/deliveries?limit=50`));
  if (!log) return;
  const items = log.map((delivery) => {
    const next = delivery.nextAttemptAt ? `; next try ${when(delivery.nextAttemptAt)}` : "";
    const replay = endpointButton("Replay", `Replay ${delivery.eventId}`, async () => {
      const done = await act(() => api(`${path}/replay`, { method: "POST", body: { eventId: delivery.eventId } }));
      if (done) say(`${done.replayed} delivery scheduled again.`);
      await showLog(endpoint);
    });
    return h("li", {},
      h("strong", { text: `${delivery.type} v${delivery.version}` }), ` of order `, h("code", { text: delivery.orderId }),
      `: ${delivery.status}${next} `, delivery.status === "succeeded" || delivery.status === "failed" ? replay : "",
      h("ul", { class: "webhook-attempts" }, ...delivery.attempts.map(attemptLine)));
  });
  webhookLog.replaceChildren(h("h3", { text: `Deliveries of ${id}, newest first` }),
    items.length ? h("ul", {}, ...items) : h("p", { class: "muted", text: "Nothing delivered yet." }));
  webhookLog.hidden = false;
  webhookLog.focus();
}

webhookForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { clientId: webhookForm.clientId.value, url: webhookForm.url.value, events: webhookForm.events.value };
  const saved = await act(() => api("/api/admin/webhooks", { method: "POST", body }), webhookForm.querySelector(".form-error"));
  if (!saved) return;
  showSecret(saved.endpointId, saved.secret);
  webhookForm.reset();
  await loadWebhooks();
});

// ---------------------------------------------------------------------------------------------

async function main() {
  await requireSession((user) => user.role === "admin");
  bindSignOut();
  await act(async () => {
    await loadStores();
    await Promise.all([loadMenu(), loadStaff(), loadCustomers(), loadClients(), loadWebhooks()]);
  });
  document.body.dataset.ready = "true";
}

main();
