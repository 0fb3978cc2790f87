// Shared client state: mailboxes, identities, the current view, settings.
import { call } from './jmap.js';

export const state = {
  mailboxes: [], // Mailbox objects
  byId: new Map(),
  identities: [],
  route: { view: 'mailbox', mailboxId: null, emailId: null, query: '' },
  threads: localStorage.getItem('lb.threads') !== 'off',
  listeners: new Set(),
};

export function onChange(f) {
  state.listeners.add(f);
}

export function emit(what) {
  for (const f of state.listeners) f(what);
}

export const MAILBOX_PROPS = ['name', 'parentId', 'role', 'sortOrder', 'totalEmails', 'unreadEmails', 'totalThreads', 'unreadThreads', 'myRights'];

export async function loadMailboxes() {
  const r = await call('Mailbox/get', { ids: null, properties: MAILBOX_PROPS });
  state.mailboxState = r.state;
  state.mailboxes = r.list;
  state.byId = new Map(r.list.map((m) => [m.id, m]));
  emit('mailboxes');
  return r.list;
}

export function role(r) {
  return state.mailboxes.find((m) => m.role === r);
}

export function roleId(r) {
  const m = role(r);
  return m ? m.id : null;
}

export function mailboxPath(m) {
  const parts = [];
  for (let x = m; x; x = x.parentId ? state.byId.get(x.parentId) : null) parts.unshift(x.name);
  return parts.join(' / ');
}

/** Mailboxes in tree order, each with its depth. */
export function mailboxTree() {
  const kids = new Map();
  for (const m of state.mailboxes) {
    const p = m.parentId && state.byId.has(m.parentId) ? m.parentId : null;
    if (!kids.has(p)) kids.set(p, []);
    kids.get(p).push(m);
  }
  const ROLE_ORDER = ['inbox', 'drafts', 'sent', 'archive', 'junk', 'trash'];
  const rank = (m) => {
    const i = ROLE_ORDER.indexOf(m.role);
    return i < 0 ? 100 : i;
  };
  for (const l of kids.values()) {
    l.sort((a, b) => rank(a) - rank(b) || (a.sortOrder || 0) - (b.sortOrder || 0) || a.name.localeCompare(b.name));
  }
  const out = [];
  const visit = (p, depth) => {
    for (const m of kids.get(p) || []) {
      out.push({ m, depth });
      visit(m.id, depth + 1);
    }
  };
  visit(null, 0);
  return out;
}

export async function loadIdentities() {
  try {
    const r = await call('Identity/get', { ids: null });
    state.identities = r.list;
  } catch {
    state.identities = [];
  }
  return state.identities;
}

export function myAddresses() {
  const set = new Set(state.identities.map((i) => i.email.toLowerCase()));
  return set;
}

export function setThreads(on) {
  state.threads = on;
  localStorage.setItem('lb.threads', on ? 'on' : 'off');
}

