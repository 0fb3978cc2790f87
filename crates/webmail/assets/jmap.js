// The JMAP client (RFC 8620/8621) over the session cookie: login, the
// Session resource, batched method calls with result references, uploads
// with progress, download URLs. Every state-changing request carries the
// double-submit CSRF token.

export const USING = [
  'urn:ietf:params:jmap:core',
  'urn:ietf:params:jmap:mail',
  'urn:ietf:params:jmap:submission',
  'urn:ietf:params:jmap:vacationresponse',
];

export const jmap = {
  session: null,
  accountId: null,
  username: null,
  csrf: '',
  offline: false,
  onOffline: () => {},
  onAuthLost: () => {},
};

export class JmapError extends Error {
  constructor(type, description) {
    super(description || type);
    this.type = type;
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)lbx_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : jmap.csrf;
}

/** A same-origin path for a URL from the Session resource. */
function local(url) {
  try {
    const u = new URL(url, location.href);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

function setOffline(v) {
  if (jmap.offline !== v) {
    jmap.offline = v;
    jmap.onOffline(v);
  }
}

/** fetch with the CSRF header on anything but GET; JSON in and out. */
export async function request(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    setOffline(true);
    throw new JmapError('offline', 'You are offline.');
  }
  setOffline(res.headers.get('X-Letterbox-Offline') === '1');
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  return { status: res.status, ok: res.ok, data };
}

export async function whoami() {
  const r = await request('GET', '/auth/session');
  if (r.ok && r.data) {
    jmap.username = r.data.username;
    jmap.csrf = r.data.csrf;
    return r.data;
  }
  return null;
}

export async function login(username, password) {
  const r = await request('POST', '/auth/session', { username, password });
  if (!r.ok) throw new JmapError('login', (r.data && r.data.error) || `Sign-in failed (${r.status}).`);
  jmap.username = r.data.username;
  jmap.csrf = r.data.csrf;
  return r.data;
}

export async function logout() {
  await request('DELETE', '/auth/session').catch(() => {});
  jmap.session = null;
}

export async function loadSession() {
  const r = await request('GET', '/jmap/session');
  if (r.status === 401) {
    jmap.onAuthLost();
    throw new JmapError('auth', 'Signed out.');
  }
  if (!r.ok) throw new JmapError('session', 'Cannot load the mail session.');
  jmap.session = r.data;
  jmap.accountId = r.data.primaryAccounts['urn:ietf:params:jmap:mail'];
  return r.data;
}

export function capability(name) {
  return jmap.session && jmap.session.capabilities[name];
}

export function accountCapability(name) {
  const acc = jmap.session && jmap.session.accounts[jmap.accountId];
  return acc && acc.accountCapabilities[name];
}

/** Whether the server offers a submission extension (e.g. FUTURERELEASE). */
export function submissionExtension(name) {
  for (const c of [capability('urn:ietf:params:jmap:submission'), accountCapability('urn:ietf:params:jmap:submission')]) {
    const ext = c && c.submissionExtensions;
    if (!ext) continue;
    if (Array.isArray(ext) ? ext.includes(name) : name in ext) return true;
  }
  return false;
}

let seq = 0;

/**
 * Runs method calls in one request. Each call is [name, args] (accountId
 * filled in); returns the responses by position. A method error throws
 * unless `lenient`, then the error response stays in the list.
 */
export async function api(calls, { lenient = false, using = USING } = {}) {
  const methodCalls = calls.map(([name, args, id], i) => [
    name,
    name.startsWith('PushSubscription/') ? args : { accountId: jmap.accountId, ...args },
    id || `c${i}`,
  ]);
  const r = await request('POST', local(jmap.session.apiUrl), { using, methodCalls });
  if (r.status === 401) {
    jmap.onAuthLost();
    throw new JmapError('auth', 'Signed out.');
  }
  if (!r.ok || !r.data || !r.data.methodResponses) {
    throw new JmapError('request', (r.data && (r.data.detail || r.data.error)) || `Server error ${r.status}`);
  }
  const out = r.data.methodResponses.map(([name, args]) => ({ name, ...args }));
  if (!lenient) {
    for (const m of out) if (m.name === 'error') throw new JmapError(m.type, m.description || m.type);
  }
  seq++;
  return out;
}

/** One method call; its response arguments. */
export async function call(name, args, opts) {
  const [r] = await api([[name, args]], opts);
  return r;
}

/** A result reference to the call at index `i` (ids `c<i>`). */
export function ref(i, name, path) {
  return { resultOf: `c${i}`, name, path };
}

export function downloadUrl(blobId, name, type, inline) {
  const t = jmap.session.downloadUrl;
  const url = t
    .replace('{accountId}', encodeURIComponent(jmap.accountId))
    .replace('{blobId}', encodeURIComponent(blobId))
    .replace('{name}', encodeURIComponent(name || 'attachment'))
    .replace('{type}', encodeURIComponent(type || 'application/octet-stream'));
  return local(url) + (inline ? '&disposition=inline' : '');
}

/** Uploads a file or blob; onprogress(fraction). Resolves to {blobId, type, size}. */
export function upload(file, onprogress, type) {
  const url = local(jmap.session.uploadUrl.replace('{accountId}', encodeURIComponent(jmap.accountId)));
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.withCredentials = true;
    xhr.setRequestHeader('X-CSRF-Token', csrfToken());
    xhr.setRequestHeader('Content-Type', type || file.type || 'application/octet-stream');
    xhr.upload.onprogress = (e) => e.lengthComputable && onprogress && onprogress(e.loaded / e.total);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch (e) {
          reject(e);
        }
      } else reject(new JmapError('upload', `Upload failed (${xhr.status})`));
    };
    xhr.onerror = () => reject(new JmapError('upload', 'Upload failed (network)'));
    xhr.send(file);
  });
}

export function eventSourceUrl() {
  return local(
    jmap.session.eventSourceUrl
      .replace('{types}', '*')
      .replace('{closeafter}', 'no')
      .replace('{ping}', '30'),
  );
}

export { csrfToken };
