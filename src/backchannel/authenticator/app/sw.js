// Service worker: keeps the app shell for offline start, shows Web Push notifications and
// opens the app when one is clicked. The device API (api/...) is never cached.

const CACHE = "authenticator-shell-v1";
const SHELL = [
  "./",
  "index.html",
  "app.js",
  "api.js",
  "consent.js",
  "crypto.js",
  "store.js",
  "styles.css",
  "manifest.webmanifest",
  "icon.svg",
  "icon-192.png",
  "icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

function isShellRequest(request) {
  if (request.method !== "GET") return false;
  const url = new URL(request.url);
  const scope = new URL(self.registration.scope);
  return url.origin === scope.origin && url.pathname.startsWith(scope.pathname)
    && !url.pathname.startsWith(`${scope.pathname}api/`);
}

// Network first, so an updated app is used at once; the cached shell when offline.
self.addEventListener("fetch", (event) => {
  if (!isShellRequest(event.request)) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })),
  );
});

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = {};
  }
  const title = message.client_name ? `${message.client_name} asks for your approval` : "New request";
  const options = {
    body: message.binding_message || "Open the authenticator to approve or deny.",
    tag: message.request_id || "backchannel-request",
    icon: "icon-192.png",
    badge: "icon-192.png",
    requireInteraction: true,
    data: { requestId: message.request_id || null },
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = self.registration.scope;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((client) => client.url.startsWith(target));
      return open ? open.focus() : self.clients.openWindow(target);
    }),
  );
});
