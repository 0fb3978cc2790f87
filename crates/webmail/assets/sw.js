// Letterbox service worker, version {{VERSION}}: the app shell offline,
// the last JMAP answers for an offline read-only start, and Web Push.
const VERSION = '{{VERSION}}';
const PRECACHE = {{PRECACHE}};
const SHELL = `lb-shell-${VERSION}`;
const DATA = 'lb-data';
const MAX_API_ENTRIES = 200;
const MAX_API_BYTES = 2 * 1024 * 1024;

self.addEventListener('install', (e) => {
  e.waitUntil((async () => {
    const c = await caches.open(SHELL);
    await c.addAll(['/', '/manifest.webmanifest', ...PRECACHE]).catch(() => c.addAll(PRECACHE));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (e) => {
  e.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith('lb-shell-') && k !== SHELL) await caches.delete(k);
    await self.clients.claim();
  })());
});

function offlineCopy(res) {
  const h = new Headers(res.headers);
  h.set('X-Letterbox-Offline', '1');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: h });
}

async function hash(text) {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Only answers to pure reads are kept (no /set, no submission). */
function readOnly(body) {
  try {
    const calls = JSON.parse(body).methodCalls;
    return calls.every(([name]) => /\/(get|query|changes|queryChanges)$/.test(name) && !name.startsWith('PushSubscription'));
  } catch {
    return false;
  }
}

async function trim(cache) {
  const keys = await cache.keys();
  for (const k of keys.slice(0, Math.max(0, keys.length - MAX_API_ENTRIES))) await cache.delete(k);
}

async function api(req) {
  const body = await req.clone().text();
  const keep = readOnly(body);
  const key = keep ? new Request(`/__lb_cache/api/${await hash(body)}`) : null;
  try {
    const res = await fetch(req);
    const big = Number(res.headers.get('content-length') || 0) > MAX_API_BYTES;
    if (keep && res.ok && !big) {
      const c = await caches.open(DATA);
      await c.delete(key);
      await c.put(key, res.clone());
      trim(c);
    }
    return res;
  } catch (err) {
    const hit = keep && (await (await caches.open(DATA)).match(key));
    if (hit) return offlineCopy(hit);
    throw err;
  }
}

/** Network first, the stored copy when offline (session, who am I, page). */
async function networkFirst(req, cacheName, asOffline) {
  try {
    const res = await fetch(req);
    if (res.ok) (await caches.open(cacheName)).put(req, res.clone());
    return res;
  } catch (err) {
    const hit = await (await caches.open(cacheName)).match(req, { ignoreSearch: req.mode === 'navigate' });
    if (hit) return asOffline ? offlineCopy(hit) : hit;
    if (req.mode === 'navigate') {
      const shell = await caches.match('/');
      if (shell) return shell;
    }
    throw err;
  }
}

async function cacheFirst(req) {
  const hit = await caches.match(req);
  if (hit) return hit;
  const res = await fetch(req);
  if (res.ok) (await caches.open(SHELL)).put(req, res.clone());
  return res;
}

self.addEventListener('fetch', (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (url.origin !== location.origin) return;
  if (req.method === 'POST' && url.pathname === '/jmap/api') {
    e.respondWith(api(req));
  } else if (req.method !== 'GET') {
    return;
  } else if (req.mode === 'navigate' || url.pathname === '/') {
    e.respondWith(networkFirst(new Request('/'), SHELL, false));
  } else if (url.pathname.startsWith('/assets/')) {
    e.respondWith(VERSION === 'dev' ? networkFirst(req, SHELL, false) : cacheFirst(req));
  } else if (url.pathname === '/jmap/session' || url.pathname === '/auth/session') {
    e.respondWith(networkFirst(req, DATA, true));
  } else if (url.pathname === '/manifest.webmanifest') {
    e.respondWith(networkFirst(req, SHELL, false));
  }
});

// ---- Web Push ------------------------------------------------------------

function kv(key) {
  return new Promise((resolve) => {
    const r = indexedDB.open('letterbox', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('kv');
    r.onerror = () => resolve(undefined);
    r.onsuccess = () => {
      try {
        const g = r.result.transaction('kv').objectStore('kv').get(key);
        g.onsuccess = () => resolve(g.result);
        g.onerror = () => resolve(undefined);
      } catch {
        resolve(undefined);
      }
    };
  });
}

function kvPut(key, value) {
  return new Promise((resolve) => {
    const r = indexedDB.open('letterbox', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('kv');
    r.onerror = () => resolve();
    r.onsuccess = () => {
      const t = r.result.transaction('kv', 'readwrite');
      t.objectStore('kv').put(value, key);
      t.oncomplete = () => resolve();
      t.onerror = () => resolve();
    };
  });
}

async function jmapCall(calls, using) {
  const api = await kv('api');
  if (!api) throw new Error('not signed in');
  const res = await fetch(api.apiUrl, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': api.csrf },
    body: JSON.stringify({
      using: using || ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail'],
      methodCalls: calls.map(([n, a], i) => [n, n.startsWith('PushSubscription') ? a : { accountId: api.accountId, ...a }, `c${i}`]),
    }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return (await res.json()).methodResponses;
}

async function newest() {
  const [mb] = await jmapCall([['Mailbox/query', { filter: { role: 'inbox' } }]]);
  const inbox = mb[1].ids && mb[1].ids[0];
  const rs = await jmapCall([
    ['Email/query', { filter: { inMailbox: inbox, notKeyword: '$seen' }, sort: [{ property: 'receivedAt', isAscending: false }], limit: 1 }],
    ['Email/get', { '#ids': { resultOf: 'c0', name: 'Email/query', path: '/ids' }, properties: ['from', 'subject', 'receivedAt'] }],
  ]);
  return { email: rs[1][1].list[0] || null, inbox };
}

async function onPush(data) {
  if (data && data['@type'] === 'PushVerification') {
    await jmapCall([['PushSubscription/set', { update: { [data.pushSubscriptionId]: { verificationCode: data.verificationCode } } }]], ['urn:ietf:params:jmap:core']);
    return;
  }
  let title = 'New mail';
  let body = '';
  let tag = 'lb-new-mail';
  let url = '/';
  try {
    const { email, inbox } = await newest();
    if (email) {
      const last = await kv('notified');
      if (last === email.id) return;
      await kvPut('notified', email.id);
      const from = (email.from || [])[0] || {};
      title = from.name || from.email || 'New mail';
      body = email.subject || '(no subject)';
      url = `/#/m/${inbox}/${email.id}`;
    } else return;
  } catch {
    /* offline or signed out: a generic notice */
  }
  await self.registration.showNotification(title, { body, tag, icon: PRECACHE.find((u) => u.endsWith('icon.svg')), data: { url } });
}

self.addEventListener('push', (e) => {
  let data = null;
  try {
    data = e.data ? e.data.json() : null;
  } catch {
    data = null;
  }
  e.waitUntil(onPush(data).catch(() => self.registration.showNotification('New mail', { tag: 'lb-new-mail', data: { url: '/' } })));
});

self.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const url = (e.notification.data && e.notification.data.url) || '/';
  e.waitUntil((async () => {
    const all = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const c of all) {
      if (new URL(c.url).origin === location.origin) {
        await c.focus();
        if ('navigate' in c) await c.navigate(url).catch(() => {});
        return;
      }
    }
    await self.clients.openWindow(url);
  })());
});
