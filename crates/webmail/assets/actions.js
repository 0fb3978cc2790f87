// Organising mail: keywords, moves, archive, delete, spam. A list item is
// {emailId, threadId}; in conversation mode an action covers the thread's
// emails (moves only those in the mailbox being viewed).
import { call } from './jmap.js';
import { state, roleId } from './state.js';
import { toast } from './util.js';

const CHUNK = 500;

/** The emails (id, mailboxIds, keywords) an action on these items covers. */
export async function resolve(items, whole = state.threads) {
  if (!items.length) return [];
  let ids;
  if (whole) {
    const threadIds = [...new Set(items.map((i) => i.threadId))];
    const t = await call('Thread/get', { ids: threadIds });
    ids = t.list.flatMap((x) => x.emailIds);
  } else ids = items.map((i) => i.emailId);
  const out = [];
  for (let i = 0; i < ids.length; i += CHUNK) {
    const r = await call('Email/get', { ids: ids.slice(i, i + CHUNK), properties: ['mailboxIds', 'keywords', 'threadId'] });
    out.push(...r.list);
  }
  return out;
}

async function setUpdates(update) {
  const ids = Object.keys(update);
  for (let i = 0; i < ids.length; i += CHUNK) {
    const part = Object.fromEntries(ids.slice(i, i + CHUNK).map((k) => [k, update[k]]));
    const r = await call('Email/set', { update: part });
    const failed = r.notUpdated && Object.values(r.notUpdated)[0];
    if (failed) throw new Error(failed.description || failed.type);
  }
}

export async function setKeyword(items, keyword, on) {
  const emails = await resolve(items);
  const update = {};
  for (const e of emails) update[e.id] = { [`keywords/${keyword}`]: on ? true : null };
  await setUpdates(update);
}

/** The emails of `emails` that belong to the viewed mailbox (or all when searching). */
function inCurrent(emails) {
  const cur = state.route.mailboxId;
  if (!cur || state.route.view === 'search') {
    const trash = roleId('trash');
    return emails.filter((e) => !e.mailboxIds[trash] || Object.keys(e.mailboxIds).length > 1 || state.route.view === 'search');
  }
  const l = emails.filter((e) => e.mailboxIds[cur]);
  return l.length ? l : emails;
}

/** Moves items to a mailbox; extra keyword patches (spam). Returns an undo. */
export async function move(items, toId, keywords = {}) {
  const emails = inCurrent(await resolve(items));
  const cur = state.route.view === 'mailbox' ? state.route.mailboxId : null;
  const update = {};
  const undo = {};
  for (const e of emails) {
    const kw = kwPatch(keywords);
    if (e.mailboxIds[toId] && Object.keys(e.mailboxIds).length === 1) {
      if (Object.keys(kw).length) update[e.id] = kw;
      continue;
    }
    // Out of the folder being viewed (its other folders stay), into the target.
    update[e.id] = cur && e.mailboxIds[cur] && cur !== toId
      ? { [`mailboxIds/${cur}`]: null, [`mailboxIds/${toId}`]: true, ...kw }
      : { mailboxIds: { [toId]: true }, ...kw };
    undo[e.id] = { mailboxIds: e.mailboxIds };
  }
  await setUpdates(update);
  return () => setUpdates(undo);
}

function kwPatch(kw) {
  const p = {};
  for (const [k, v] of Object.entries(kw)) p[`keywords/${k}`] = v ? true : null;
  return p;
}

export async function archive(items) {
  let id = roleId('archive');
  if (!id) {
    const r = await call('Mailbox/set', { create: { a: { name: 'Archive', role: 'archive' } } });
    id = r.created && r.created.a && r.created.a.id;
    if (!id) throw new Error('No Archive folder');
  }
  return move(items, id);
}

/** To Trash; destroyed for good when already in Trash or Junk. */
export async function remove(items) {
  const trash = roleId('trash');
  const cur = state.route.mailboxId;
  if (state.route.view === 'mailbox' && (cur === trash || cur === roleId('junk'))) {
    const emails = await resolve(items);
    const ids = emails.filter((e) => e.mailboxIds[cur]).map((e) => e.id);
    await destroy(ids);
    return null;
  }
  return move(items, trash);
}

export async function destroy(ids) {
  for (let i = 0; i < ids.length; i += CHUNK) await call('Email/set', { destroy: ids.slice(i, i + CHUNK) });
}

export async function spam(items) {
  let junk = roleId('junk');
  return move(items, junk, { $junk: true, $notjunk: false });
}

export async function notSpam(items) {
  return move(items, roleId('inbox'), { $notjunk: true, $junk: false });
}

/** Destroys every email in a mailbox (Trash, Junk). */
export async function emptyMailbox(id) {
  let total = 0;
  for (;;) {
    const q = await call('Email/query', { filter: { inMailbox: id }, limit: CHUNK });
    if (!q.ids.length) break;
    await destroy(q.ids);
    total += q.ids.length;
    if (q.ids.length < CHUNK) break;
  }
  return total;
}

/** Runs an action with a toast (and undo when it returns one). */
export async function run(label, f) {
  try {
    const undo = await f();
    toast(label, typeof undo === 'function' ? { label: 'Undo', run: () => undo().catch((e) => toast(e.message)) } : null);
  } catch (e) {
    toast(`Failed: ${e.message}`);
  }
}

