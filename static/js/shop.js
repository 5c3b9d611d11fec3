// What every customer shop page shares: the top bar (navigation, cart count, sign in or out).

import { bindSignOut, currentUser } from "./api.js";
import { bindCartCount } from "./cart.js";

export function bindShopChrome() {
  const signedIn = !!currentUser();
  for (const element of document.querySelectorAll("[data-signed-in]")) element.hidden = !signedIn;
  for (const element of document.querySelectorAll("[data-signed-out]")) element.hidden = signedIn;
  const here = window.location.pathname;
  for (const link of document.querySelectorAll(".shop-nav a")) {
    const path = new URL(link.href).pathname;
    if (here === path || (path === "/stores" && here.startsWith("/stores/"))) link.setAttribute("aria-current", "page");
  }
  for (const link of document.querySelectorAll("[data-signin]")) {
    link.href = `/login?${new URLSearchParams({ next: here + window.location.search })}`;
  }
  bindCartCount();
  bindSignOut();
}
