// Service worker: version {{VERSION}}.
const PRECACHE = {{PRECACHE}};
self.addEventListener('install', (e) => {
  e.waitUntil(caches.open('lb-{{VERSION}}').then((c) => c.addAll(PRECACHE)));
});
