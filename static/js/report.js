// The store's day in numbers (/report): figures, a server-drawn chart, tables and the CSV, for a
// store's staff (their store) and admins (any store, ?store=); and the store's pickup board links.

import { api, ApiError, bindSignOut, requireSession, validAccessToken } from "./api.js";
import { cancellationText, formatMoney, h } from "./format.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const today = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());

let storeId = "";

function flash(message, kind = "error") {
  $("flash").hidden = !message;
  $("flash").className = `notice notice--${kind}`;
  $("flash").textContent = message || "";
}

async function fetchText(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${await validAccessToken()}` }, cache: "no-store" });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, body?.message || `Request failed (${response.status}).`);
  }
  return response.text();
}

const minutes = (value) => (value == null ? "—" : `${value} min`);

function figures(report) {
  const rows = [
    ["Orders", report.orders], ["Revenue", formatMoney(report.revenue)],
    ["Average accepted → ready", minutes(report.prepTime.averageMinutes)],
    ["90th percentile", minutes(report.prepTime.p90Minutes)],
    ["Late", `${report.late.count} of ${report.late.of}`], ["No-shows", report.noShows],
    ["Cancelled", report.cancellations.total], ["Cap hit", report.capHit],
  ];
  $("figures").replaceChildren(...rows.map(([label, value]) => h("div", { dataset: { figure: label } },
    h("dt", { text: label }), h("dd", { text: String(value) }))));
}

function table(id, rows) {
  $(id).querySelector("tbody").replaceChildren(...(rows.length ? rows : [["Nothing this day"]]).map((cells) =>
    h("tr", {}, ...cells.map((cell) => h("td", { text: String(cell) })))));
}

async function load() {
  const day = $("date").value || today;
  const path = `/api/stores/${encodeURIComponent(storeId)}/report?date=${encodeURIComponent(day)}`;
  history.replaceState(null, "", `/report?${new URLSearchParams({ ...(params.get("store") ? { store: storeId } : {}), date: day })}`);
  try {
    const report = await api(path);
    flash("");
    $("store-name").textContent = report.storeName;
    document.title = `${report.storeName}, ${day} · OrderPulse`;
    figures(report);
    table("hours", report.hours.map((hour) => [`${String(hour.hour).padStart(2, "0")}:00`, hour.count, hour.averageMinutes, hour.p90Minutes]));
    table("items", report.topItems.map((item) => [item.name, item.quantity, formatMoney(item.revenue)]));
    table("cancellations", Object.entries(report.cancellations.byReason).map(([reason, count]) => [cancellationText(reason, "kitchen"), count]));
    const svg = await fetchText(`${path}&format=svg`);
    $("chart").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
    $("chart").alt = `Accepted to ready per hour on ${day}: average ${minutes(report.prepTime.averageMinutes)}, `
      + `90th percentile ${minutes(report.prepTime.p90Minutes)}; the table below has each hour.`;
    document.body.dataset.loaded = day;
  } catch (error) {
    flash(error.message);
  }
}

async function downloadCsv() {
  const day = $("date").value || today;
  try {
    const text = await fetchText(`/api/stores/${encodeURIComponent(storeId)}/report?date=${encodeURIComponent(day)}&format=csv`);
    const link = h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: `orderpulse-report-${day}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    flash(error.message);
  }
}

// -- pickup board screens ------------------------------------------------------------------------

// Bumped by each change of the "read aloud" box, so that a load begun before it does not undo it.
let announceChanges = 0;

async function loadDisplays() {
  const changes = announceChanges;
  // Read together and shown together: the list never appears before the box it goes with.
  const [displays, board] = await Promise.all([
    api(`/api/stores/${encodeURIComponent(storeId)}/displays`),
    api(`/api/stores/${encodeURIComponent(storeId)}/board`),
  ]);
  $("displays").replaceChildren(...displays.map((display) => {
    const revoke = h("button", { class: "button button--quiet", type: "button", text: "Revoke",
      "aria-label": `Revoke the board link ${display.label || "without a name"}` });
    revoke.addEventListener("click", async () => {
      await api(`/api/stores/${encodeURIComponent(storeId)}/displays/${display.id}`, { method: "DELETE" });
      $("new-link").hidden = true;
      await loadDisplays();
    });
    return h("li", {}, h("span", { text: `${display.label || "Unnamed screen"}, made by ${display.createdByName}` }), revoke);
  }));
  if (changes === announceChanges) $("announce").checked = board.announce;
}

async function makeDisplay(event) {
  event.preventDefault();
  const label = $("display-label").value.trim();
  try {
    const made = await api(`/api/stores/${encodeURIComponent(storeId)}/displays`, { method: "POST", body: label ? { label } : {} });
    $("new-link").hidden = false;
    $("new-link").replaceChildren(h("strong", { text: "Open this link on the screen (it is shown only now):" }),
      h("a", { class: "report__link", href: made.url, target: "_blank", rel: "noopener", text: made.url }));
    $("display-label").value = "";
    await loadDisplays();
  } catch (error) {
    flash(error.message);
  }
}

async function start() {
  const user = await requireSession((u) => u.role === "store_employee" || u.role === "admin");
  bindSignOut();
  if (user.role === "admin") {
    $("kitchen-link").hidden = true;
    const stores = await api("/api/stores");
    const list = Array.isArray(stores) ? stores : stores.stores;
    $("store-field").hidden = false;
    $("store").replaceChildren(...list.map((store) => h("option", { value: store.id, text: store.name })));
    storeId = params.get("store") || list[0]?.id || "";
    $("store").value = storeId;
    $("store").addEventListener("change", () => { storeId = $("store").value; params.set("store", storeId); load(); loadDisplays(); });
  } else {
    storeId = user.storeId || "";
  }
  if (!storeId) {
    flash("Your account is not assigned to a store yet.");
    return;
  }
  $("date").value = /^\d{4}-\d{2}-\d{2}$/.test(params.get("date") || "") ? params.get("date") : today;
  $("date").max = today;
  $("pick").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("csv").addEventListener("click", downloadCsv);
  $("display-form").addEventListener("submit", makeDisplay);
  $("announce").addEventListener("change", async () => {
    announceChanges += 1;
    await api(`/api/stores/${encodeURIComponent(storeId)}/board`, { method: "PATCH", body: { announce: $("announce").checked } });
  });
  await Promise.all([load(), loadDisplays()]);
}

start();
