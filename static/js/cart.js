// The cart: one store's lines, kept in localStorage so it survives a reload or a closed tab.

const CART_KEY = "orderpulse.cart";
export const MAX_QUANTITY = 20;

/** `{storeId, storeName, lines: [{id, name, price, quantity}]}`, or an empty cart. */
export function readCart() {
  try {
    const cart = JSON.parse(localStorage.getItem(CART_KEY) || "null");
    if (cart && typeof cart.storeId === "string" && Array.isArray(cart.lines)) return cart;
  } catch {
    // A damaged entry is treated as an empty cart.
  }
  return { storeId: null, storeName: "", lines: [] };
}

function writeCart(cart) {
  if (!cart.lines.length) localStorage.removeItem(CART_KEY);
  else localStorage.setItem(CART_KEY, JSON.stringify(cart));
  window.dispatchEvent(new CustomEvent("orderpulse:cart", { detail: cart }));
  return cart;
}

/** Change an item's quantity by `delta` (a cart holds one store: another store's item starts a new cart). */
export function changeQuantity(store, item, delta) {
  let cart = readCart();
  if (cart.storeId !== store.id) cart = { storeId: store.id, storeName: store.name, lines: [] };
  const line = cart.lines.find((entry) => entry.id === item.id);
  const quantity = Math.max(0, Math.min(MAX_QUANTITY, (line?.quantity || 0) + delta));
  if (line) line.quantity = quantity;
  else if (quantity) cart.lines.push({ id: item.id, name: item.name, price: item.price, quantity });
  cart.lines = cart.lines.filter((entry) => entry.quantity > 0);
  return writeCart(cart);
}

/** Keep names and prices in step with the menu as it changes. */
export function syncWithMenu(storeId, menu) {
  const cart = readCart();
  if (cart.storeId !== storeId) return cart;
  const byId = new Map(menu.map((item) => [item.id, item]));
  let changed = false;
  for (const line of cart.lines) {
    const item = byId.get(line.id);
    if (item && (item.price !== line.price || item.name !== line.name)) {
      Object.assign(line, { price: item.price, name: item.name });
      changed = true;
    }
  }
  return changed ? writeCart(cart) : cart;
}

export function clearCart() {
  writeCart({ storeId: null, storeName: "", lines: [] });
}

export function cartCount(cart = readCart()) {
  return cart.lines.reduce((sum, line) => sum + line.quantity, 0);
}

export function cartTotal(cart = readCart()) {
  return cart.lines.reduce((sum, line) => sum + line.price * line.quantity, 0);
}

/** Show the cart's item count in every `[data-cart-count]` element, now and on every change. */
export function bindCartCount(root = document) {
  const show = () => {
    const count = cartCount();
    for (const element of root.querySelectorAll("[data-cart-count]")) {
      element.textContent = String(count);
      element.hidden = count === 0;
    }
  };
  show();
  window.addEventListener("orderpulse:cart", show);
  window.addEventListener("storage", show);
}
