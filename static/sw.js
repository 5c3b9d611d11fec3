// OrderPulse's service worker: shows the order notices the server pushes (Web Push), and opens
// (or focuses) the order's tracking page when one is tapped. It caches nothing.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let notice = {};
  try {
    notice = event.data ? event.data.json() : {};
  } catch (error) {
    notice = { title: "OrderPulse", body: event.data ? event.data.text() : "" };
  }
  const title = notice.title || "OrderPulse";
  event.waitUntil(self.registration.showNotification(title, {
    body: notice.body || "",
    tag: notice.tag || "orderpulse",
    renotify: true,
    icon: "/static/img/logo.svg",
    badge: "/static/img/logo.svg",
    requireInteraction: notice.moment === "ready" || notice.moment === "pickup_reminder",
    vibrate: [200, 100, 200],
    data: { url: notice.url || "/orders", moment: notice.moment || null },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/orders", self.location.origin);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).pathname === target.pathname && "focus" in client) {
        return client.focus();
      }
    }
    return self.clients.openWindow(target.href);
  })());
});
