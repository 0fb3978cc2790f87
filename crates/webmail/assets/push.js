// Web Push (RFC 8030/8291/8292) through a JMAP PushSubscription: after a
// click, ask for permission, subscribe with the server's VAPID key, and
// register the endpoint. The service worker answers the verification and
// shows "New mail".
import { jmap, call, capability, csrfToken } from './jmap.js';
import { kvSet, kvGet } from './idb.js';
import { b64url, fromB64url } from './util.js';

function deviceId() {
  let id = localStorage.getItem('lb.device');
  if (!id) {
    id = b64url(crypto.getRandomValues(new Uint8Array(12)));
    localStorage.setItem('lb.device', id);
  }
  return id;
}

/** What the worker needs to call the API on its own (cookies go along). */
export async function rememberForWorker() {
  if (!jmap.session) return;
  await kvSet('api', { apiUrl: new URL(jmap.session.apiUrl, location.href).pathname, accountId: jmap.accountId, csrf: csrfToken() });
}

export async function forgetPush() {
  await kvSet('api', undefined);
  const reg = await navigator.serviceWorker?.getRegistration('/');
  const sub = reg && (await reg.pushManager.getSubscription());
  if (sub) await sub.unsubscribe().catch(() => {});
}

export function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window && !!capability('urn:ietf:params:jmap:webpush-vapid');
}

export async function pushState() {
  if (!pushSupported()) return 'unsupported';
  const reg = await navigator.serviceWorker.getRegistration('/');
  const sub = reg && (await reg.pushManager.getSubscription());
  return sub && (await kvGet('pushId')) ? 'on' : Notification.permission === 'denied' ? 'denied' : 'off';
}

/** Must run from a user gesture (the permission prompt). */
export async function enablePush() {
  if (!pushSupported()) throw new Error('This browser or server does not support push notifications.');
  const perm = await Notification.requestPermission();
  if (perm !== 'granted') throw new Error('Notifications are not allowed for this site.');
  await rememberForWorker();
  const reg = await navigator.serviceWorker.ready;
  const key = capability('urn:ietf:params:jmap:webpush-vapid').applicationServerKey;
  const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromB64url(key) });
  const json = sub.toJSON();
  const r = await call('PushSubscription/set', {
    create: { p: { deviceClientId: deviceId(), url: sub.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth }, types: ['Email'] } },
  }, { using: ['urn:ietf:params:jmap:core'] });
  if (!r.created || !r.created.p) {
    const e = Object.values(r.notCreated || {})[0];
    throw new Error(e ? e.description || e.type : 'The server refused the subscription.');
  }
  await kvSet('pushId', r.created.p.id);
  return r.created.p.id;
}

export async function disablePush() {
  const id = await kvGet('pushId');
  if (id) await call('PushSubscription/set', { destroy: [id] }, { using: ['urn:ietf:params:jmap:core'] }).catch(() => {});
  await kvSet('pushId', undefined);
  const reg = await navigator.serviceWorker.getRegistration('/');
  const sub = reg && (await reg.pushManager.getSubscription());
  if (sub) await sub.unsubscribe();
}
