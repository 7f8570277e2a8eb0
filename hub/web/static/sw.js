"use strict";
// The remote's service worker: the app shell (page, scripts, styles, icons) is
// kept so the remote opens with no network and says so; the API and the live
// WebSocket are never cached.
const SHELL = "legato-shell-v1";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(["/remote"])).catch(() => {}));
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== SHELL).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname === "/remote" && event.request.mode === "navigate") {
    // network first: a signed-out browser must reach the login redirect
    event.respondWith(
      fetch(event.request)
        .then((res) => {
          if (res.ok && !res.redirected) {
            const copy = res.clone();
            caches.open(SHELL).then((cache) => cache.put("/remote", copy));
          }
          return res;
        })
        .catch(() => caches.match("/remote")),
    );
  } else if (url.pathname.startsWith("/static/") && url.searchParams.has("v")) {
    // versioned: a cached copy is always right
    event.respondWith(
      caches.match(event.request).then((hit) => hit || fetch(event.request).then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(SHELL).then((cache) => cache.put(event.request, copy));
        }
        return res;
      })),
    );
  }
});
