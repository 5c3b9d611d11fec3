// The stores open now (`GET /api/stores` lists only open ones), each linking to its menu.

import { api, ApiError } from "./api.js";
import { h } from "./format.js";
import { bindShopChrome } from "./shop.js";

const list = document.getElementById("stores");

async function load() {
  try {
    const stores = await api("/api/stores", { auth: false });
    const open = (Array.isArray(stores) ? stores : stores?.stores || []).filter((store) => store.isActive !== false);
    list.removeAttribute("aria-busy");
    if (!open.length) {
      list.replaceChildren(h("div", { class: "card empty" }, h("strong", { text: "No store is open right now" }),
        "Check back at meal times."));
      return;
    }
    list.replaceChildren(h("ul", { class: "store-list", "aria-label": "Open stores" }, open.map((store) =>
      h("li", {}, h("a", { class: "store-card", href: `/stores/${store.id}` },
        h("span", { class: "store-card__name", text: store.name }),
        h("span", { class: "store-card__meta", text: ` · ${store.location}` }),
        h("br"),
        h("span", { class: "open-badge", dataset: { open: "true" }, text: "Open now" }))))));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    list.removeAttribute("aria-busy");
    list.replaceChildren(h("div", { class: "notice notice--error", role: "alert" },
      h("div", {}, h("strong", { text: "Couldn't load the stores" }), " ", error.message, " ",
        h("button", { class: "button button--quiet", type: "button", text: "Try again", onclick: load }))));
  }
}

bindShopChrome();
load();
