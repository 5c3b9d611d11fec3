// "Notify me when it's ready": this device's Web Push subscription for the signed-in customer's
// orders (the server sends accepted, ready, a pickup reminder and cancelled; /sw.js shows them).
// And, while a tracking page is open, the same moments on the page itself: a sound, a vibration,
// and a system notification when the tab is in the background.

import { api } from "./api.js";

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function applicationServerKey(base64url) {
  const base64 = (base64url + "=".repeat((4 - (base64url.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

async function registration() {
  const existing = await navigator.serviceWorker.getRegistration("/");
  if (existing) return existing;
  await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  return navigator.serviceWorker.ready;
}

/** "unsupported", "blocked" (the person said no), "on" or "off". */
export async function pushState() {
  if (!pushSupported()) return "unsupported";
  if (Notification.permission === "denied") return "blocked";
  const existing = await navigator.serviceWorker.getRegistration("/");
  const subscription = existing && (await existing.pushManager.getSubscription());
  return subscription && Notification.permission === "granted" ? "on" : "off";
}

/** Ask for permission, subscribe, and give the subscription to the server; call from a click. */
export async function enablePush() {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error(permission === "denied"
      ? "Notifications are blocked for this site. Allow them in the browser's site settings to be told when it's ready."
      : "Notifications were not allowed.");
  }
  const worker = await registration();
  const { publicKey } = await api("/api/push/public-key", { auth: false });
  const subscription = (await worker.pushManager.getSubscription())
    || (await worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey(publicKey) }));
  await api("/api/push/subscriptions", { method: "POST", body: subscription.toJSON() });
}

export async function disablePush() {
  const existing = await navigator.serviceWorker.getRegistration("/");
  const subscription = existing && (await existing.pushManager.getSubscription());
  if (!subscription) return;
  await api("/api/push/subscriptions", { method: "DELETE", body: { endpoint: subscription.endpoint } }).catch(() => {});
  await subscription.unsubscribe();
}

/** Tell the person at once, on the open page: a vibration where the device allows, and a system
 *  notification when the tab is hidden and notifications are allowed. */
export function alertOnPage(title, body, url) {
  if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
  if (document.visibilityState === "hidden" && "Notification" in window && Notification.permission === "granted") {
    try {
      const shown = new Notification(title, { body, tag: url, icon: "/static/img/logo.svg" });
      shown.onclick = () => { window.focus(); shown.close(); };
    } catch {
      // Some mobile browsers allow notifications only from a service worker; the push covers those.
    }
  }
}
