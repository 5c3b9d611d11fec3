// What a customer's no-show history means for them, from GET /api/users/me.

import { formatLongDate, h } from "./format.js";

/** A notice element for watch-tier and restricted customers, or null for everyone else. */
export function trustNotice(me) {
  if (!me) return null;
  const until = Date.parse(me.orderingRestrictedUntil || "");
  const restricted = me.trustTier === "restricted" || (!Number.isNaN(until) && until > Date.now());
  const missed = Number(me.noShowCount) || 0;
  if (restricted) {
    const when = Number.isNaN(until) ? "" : ` until ${formatLongDate(until)}`;
    return h("div", { class: "notice notice--error", role: "status", id: "trust-notice", dataset: { tier: "restricted" } },
      h("div", {},
        h("strong", { text: `Ordering is paused${when}` }),
        `Because of ${missed || "repeated"} missed pickups, you can't place new orders for now. You can still follow and collect orders you already placed.`));
  }
  if (me.trustTier === "watch") {
    return h("div", { class: "notice notice--warn", role: "status", id: "trust-notice", dataset: { tier: "watch" } },
      h("div", {},
        h("strong", { text: `You've missed ${missed} pickup${missed === 1 ? "" : "s"}` }),
        "New orders need an “I'm on my way” confirmation within a few minutes. Another missed pickup can pause ordering for a while."));
  }
  return null;
}
