// Letterbox webmail: the shell (sign-in, folders, list, reader), routing
// by location.hash, live updates over EventSource, offline notice.
import { jmap, whoami, login, logout, loadSession, call, eventSourceUrl } from './jmap.js';
import { h, clear, toast, ask, displayName } from './util.js';
import { icon, iconEl, ROLE_ICON } from './icons.js';
import { state, loadMailboxes, loadIdentities, mailboxTree, roleId, mailboxPath, setThreads } from './state.js';
import { MailList } from './list.js';
import { loadThread, renderThread } from './thread.js';
import * as act from './actions.js';
import { parseSearch } from './search.js';
import { bindKeys, showHelp } from './keys.js';
import { openCompose, composeFromDraft } from './compose.js';
import { applyTheme } from './theme.js';

applyTheme();
const root = document.getElementById('app');
const ui = {};

function enc(s) {
  return encodeURIComponent(s);
}

// ---- sign-in ----------------------------------------------------------

function showLogin(message) {
  document.body.classList.remove('signed-in');
  clear(root);
  const err = h('p', { class: 'error', role: 'alert', hidden: !message }, message || '');
  const user = h('input', { id: 'login-user', name: 'username', type: 'email', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { id: 'login-pass', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'login', 'aria-labelledby': 'login-title' },
    h('div', { class: 'brand-big', html: icon('mail', 'logo') }),
    h('h1', { id: 'login-title' }, 'Sign in to Letterbox'),
    h('label', { for: 'login-user' }, 'Email address'), user,
    h('label', { for: 'login-pass' }, 'Password'), pass,
    err, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    err.hidden = true;
    try {
      await login(user.value, pass.value);
    } catch (x) {
      err.textContent = x.message;
      err.hidden = false;
      pass.select();
    } finally {
      submit.disabled = false;
    }
    if (err.hidden) boot();
  });
  root.append(h('main', { class: 'login-page' }, form));
  user.focus();
}

// ---- shell ------------------------------------------------------------

function shell() {
  document.body.classList.add('signed-in');
  clear(root);
  const search = h('input', { type: 'search', id: 'search', name: 'q', placeholder: 'Search mail', 'aria-label': 'Search mail', autocomplete: 'off' });
  const searchForm = h('form', { class: 'search', role: 'search' }, h('span', { class: 'search-icon', html: icon('search') }), search);
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = search.value.trim();
    location.hash = q ? `#/search/${enc(q)}` : `#/m/${roleId('inbox')}`;
    search.blur();
  });
  const menu = h('button', { class: 'icon-btn only-narrow', 'aria-label': 'Folders', onclick: () => document.body.classList.toggle('nav-open') }, iconEl('menu'));
  const top = h('header', { class: 'top' },
    menu,
    h('a', { class: 'brand', href: '#/', 'aria-label': 'Letterbox home' }, h('span', { html: icon('mail', 'logo') }), h('span', { class: 'brand-name' }, 'Letterbox')),
    searchForm,
    h('button', { class: 'icon-btn only-wide push', 'aria-label': 'Keyboard shortcuts', title: 'Keyboard shortcuts (?)', onclick: showHelp }, '?'),
    h('a', { class: 'icon-btn push-narrow', href: '#/settings', 'aria-label': 'Settings', title: 'Settings' }, iconEl('settings')),
    h('button', { class: 'icon-btn only-wide', 'aria-label': 'Sign out', title: `Sign out ${jmap.username}`, onclick: signOut }, iconEl('logout')));
  const banner = h('div', { class: 'offline-banner', role: 'status', hidden: !jmap.offline }, 'Offline — showing saved mail (read-only).');
  const vacation = h('div', { class: 'vacation-banner', role: 'status', hidden: true },
    h('span', null, 'Your vacation responder is on.'), h('a', { href: '#/settings' }, 'Change'));
  const compose = h('button', { class: 'btn primary compose-btn', onclick: () => openCompose({}) }, iconEl('pen'), h('span', null, 'Compose'));
  const folders = h('ul', { class: 'folders', role: 'list' });
  const newFolder = h('button', { class: 'btn subtle', onclick: createFolder }, iconEl('plus'), 'New folder');
  const nav = h('nav', { class: 'side', 'aria-label': 'Folders' }, compose, folders, newFolder,
    h('div', { class: 'side-foot' },
      h('span', { class: 'me', title: jmap.username }, jmap.username),
      h('button', { class: 'btn subtle', onclick: signOut }, iconEl('logout'), 'Sign out')));
  const listPane = h('section', { class: 'list-pane', 'aria-label': 'Message list' });
  const listBar = h('div', { class: 'list-bar' });
  const listTitle = h('h2', { class: 'list-title' });
  listPane.append(listTitle, listBar);
  const reader = h('main', { class: 'reader', id: 'reader', tabindex: '-1' });
  const scrim = h('div', { class: 'scrim', onclick: () => document.body.classList.remove('nav-open') });
  const fab = h('button', { class: 'fab only-narrow', 'aria-label': 'Compose', onclick: () => openCompose({}) }, iconEl('pen'));
  const skip = h('a', { class: 'skip', href: '#', onclick: (e) => {
    e.preventDefault();
    (ui.list.rows.size ? ui.listPane.querySelector('.row-link') : ui.reader)?.focus();
  } }, 'Skip to messages');
  root.append(skip, top, banner, vacation, h('div', { class: 'panes' }, nav, scrim, listPane, reader), fab, h('div', { id: 'toast', role: 'status', 'aria-live': 'polite', hidden: true }));
  Object.assign(ui, { search, banner, vacation, folders, listPane, listBar, listTitle, reader, nav });
  ui.list = new MailList(listPane, {
    hrefFor: (it) => (state.route.view === 'search' ? `#/search/${enc(state.route.query)}/${it.emailId}` : `#/m/${state.route.mailboxId}/${it.emailId}`),
    onSelection: () => renderListBar(),
    onOpen: (x) => {
      if (x.action === 'flag') doAction(x.on ? 'Flagged' : 'Unflagged', () => act.setKeyword(x.items, '$flagged', x.on));
    },
  });
  jmap.onOffline = (off) => {
    ui.banner.hidden = !off;
    document.body.classList.toggle('offline', off);
  };
}

function renderFolders() {
  if (!ui.folders) return;
  clear(ui.folders);
  for (const { m, depth } of mailboxTree()) {
    const count = m.role === 'drafts' ? m.totalEmails : m.unreadEmails;
    const current = state.route.view === 'mailbox' && state.route.mailboxId === m.id;
    const a = h('a', {
      class: 'folder' + (current ? ' current' : '') + (m.unreadEmails && m.role !== 'drafts' ? ' has-unread' : ''),
      href: `#/m/${m.id}`,
      style: `--depth:${depth}`,
      'aria-current': current ? 'page' : null,
      dataset: { mailbox: m.id, role: m.role || '' },
    }, iconEl(ROLE_ICON[m.role] || 'folder'), h('span', { class: 'folder-name' }, displayName(m)),
    count ? h('span', { class: 'badge', 'aria-label': `${count} ${m.role === 'drafts' ? 'drafts' : 'unread'}` }, String(count)) : null);
    a.addEventListener('dragover', (e) => {
      if (e.dataTransfer.types.includes('application/x-letterbox-items')) {
        e.preventDefault();
        a.classList.add('drop');
      }
    });
    a.addEventListener('dragleave', () => a.classList.remove('drop'));
    a.addEventListener('drop', (e) => {
      e.preventDefault();
      a.classList.remove('drop');
      const items = JSON.parse(e.dataTransfer.getData('application/x-letterbox-items') || '[]');
      doAction(`Moved to ${m.name}`, () => act.move(items, m.id));
    });
    a.addEventListener('click', () => document.body.classList.remove('nav-open'));
    const li = h('li', { class: 'folder-item' }, a);
    if (!m.role) {
      li.append(h('button', { class: 'icon-btn tiny folder-menu', 'aria-label': `Folder options: ${m.name}`, title: 'Rename / delete', onclick: () => folderMenu(m) }, iconEl('more')));
    }
    ui.folders.append(li);
  }
  document.title = titleText();
}

function titleText() {
  const inbox = state.mailboxes.find((m) => m.role === 'inbox');
  const n = inbox ? inbox.unreadEmails : 0;
  return n ? `(${n}) Letterbox` : 'Letterbox';
}

function parentOptions(exclude) {
  return [['', '(top level)'], ...mailboxTree().filter(({ m }) => !exclude || (m.id !== exclude && !isUnder(m, exclude)))
    .map(({ m, depth }) => [m.id, `${'\u00a0\u00a0'.repeat(depth)}${displayName(m)}`])];
}

function isUnder(m, id) {
  for (let x = m; x && x.parentId; x = state.byId.get(x.parentId)) if (x.parentId === id) return true;
  return false;
}

function setError(r, key, verb) {
  const e = (r[verb] || {})[key];
  if (e) throw new Error(e.description || e.type);
}

async function createFolder() {
  const a = await ask({
    title: 'New folder',
    fields: [{ name: 'name', label: 'Name', required: true }, { name: 'parent', label: 'Inside', options: parentOptions(), value: '' }],
    buttons: [{ value: 'ok', label: 'Create', primary: true }],
  });
  if (!a || !a.values.name.trim()) return;
  try {
    const r = await call('Mailbox/set', { create: { n: { name: a.values.name.trim(), parentId: a.values.parent || null } } });
    setError(r, 'n', 'notCreated');
    await loadMailboxes();
    toast(`Folder ${a.values.name.trim()} created`);
  } catch (e) {
    toast(`Cannot create the folder: ${e.message}`);
  }
}

async function folderMenu(m) {
  const a = await ask({
    title: `Folder ${mailboxPath(m)}`,
    fields: [{ name: 'name', label: 'Name', value: m.name, required: true }, { name: 'parent', label: 'Inside', options: parentOptions(m.id), value: m.parentId || '' }],
    buttons: [{ value: 'save', label: 'Save', primary: true }, { value: 'delete', label: 'Delete folder', danger: true }],
  });
  if (!a) return;
  try {
    if (a.button === 'delete') {
      if (m.totalEmails && !confirm(`Delete the folder ${m.name} and the ${m.totalEmails} messages in it?`)) return;
      const r = await call('Mailbox/set', { destroy: [m.id], onDestroyRemoveEmails: true });
      setError(r, m.id, 'notDestroyed');
      if (state.route.mailboxId === m.id) location.hash = `#/m/${roleId('inbox')}`;
      toast('Folder deleted');
    } else {
      const patch = {};
      if (a.values.name.trim() && a.values.name.trim() !== m.name) patch.name = a.values.name.trim();
      if ((a.values.parent || null) !== (m.parentId || null)) patch.parentId = a.values.parent || null;
      if (!Object.keys(patch).length) return;
      const r = await call('Mailbox/set', { update: { [m.id]: patch } });
      setError(r, m.id, 'notUpdated');
      toast('Folder saved');
    }
    await loadMailboxes();
  } catch (e) {
    toast(`Failed: ${e.message}`);
  }
}

// ---- list toolbar and actions -----------------------------------------

function btn(label, iconName, onclick, extra = {}) {
  return h('button', { class: 'btn tool', onclick, title: extra.title || label, 'aria-label': label, ...extra }, iconEl(iconName), h('span', { class: 'tool-label' }, label));
}

function currentRole() {
  const m = state.byId.get(state.route.mailboxId);
  return state.route.view === 'mailbox' && m ? m.role : null;
}

/** Buttons acting on `targets`; `after` runs once they moved away (thread view). `flagged` says whether to offer Unflag. */
function actionButtons(targets, after, { thread = false, flagged = false } = {}) {
  const r = currentRole();
  const out = [];
  const T = () => (typeof targets === 'function' ? targets() : targets);
  const go = (label, f, leaves = true) => doAction(label, () => f(T()), leaves ? after : null);
  if (r !== 'archive') out.push(btn('Archive', 'archive', () => go('Archived', act.archive)));
  out.push(btn(r === 'trash' || r === 'junk' ? 'Delete forever' : 'Delete', 'trash', () => go(r === 'trash' || r === 'junk' ? 'Deleted forever' : 'Moved to Trash', act.remove)));
  if (r === 'junk') out.push(btn('Not spam', 'notSpam', () => go('Moved to Inbox', act.notSpam)));
  else out.push(btn('Spam', 'junk', () => go('Marked as spam', act.spam)));
  const moveSel = h('select', { class: 'move-select', 'aria-label': 'Move to folder' },
    h('option', { value: '' }, 'Move…'),
    mailboxTree().map(({ m, depth }) => h('option', { value: m.id, disabled: m.id === state.route.mailboxId }, `${'\u00a0\u00a0'.repeat(depth)}${displayName(m)}`)));
  moveSel.addEventListener('change', () => {
    const id = moveSel.value;
    moveSel.value = '';
    if (id) go(`Moved to ${displayName(state.byId.get(id))}`, (t) => act.move(t, id));
  });
  out.push(moveSel);
  if (!thread) out.push(btn('Mark read', 'mailOpen', () => go('Marked as read', (t) => act.setKeyword(t, '$seen', true), false)));
  out.push(btn('Mark unread', 'mail', () => go('Marked as unread', (t) => act.setKeyword(t, '$seen', false), false), thread ? { title: 'Mark unread and go back' } : {}));
  if (thread) {
    out.push(btn(flagged ? 'Unflag' : 'Flag', 'star', () => go(flagged ? 'Unflagged' : 'Flagged', (t) => act.setKeyword(t, '$flagged', !flagged), false),
      { class: `btn tool${flagged ? ' flag-on' : ''}`, 'aria-pressed': String(flagged) }));
  } else {
    out.push(btn('Flag', 'star', () => go('Flagged', (t) => act.setKeyword(t, '$flagged', true), false)));
    out.push(btn('Unflag', 'star', () => go('Unflagged', (t) => act.setKeyword(t, '$flagged', false), false), { class: 'btn tool unflag' }));
  }
  return out;
}

function renderListBar() {
  if (!ui.listBar || !ui.list) return;
  clear(ui.listBar);
  const sel = ui.list.selected;
  const all = h('input', { type: 'checkbox', class: 'check', 'aria-label': 'Select all loaded', checked: sel.size > 0 });
  all.indeterminate = sel.size > 0 && sel.size < (ui.list.total || 0);
  all.addEventListener('change', () => ui.list.selectAll(all.checked));
  ui.listBar.append(all);
  if (sel.size) {
    ui.listBar.append(h('span', { class: 'sel-count' }, `${sel.size} selected`), ...actionButtons(() => [...ui.list.selected.values()]));
  } else {
    const r = currentRole();
    ui.listBar.append(
      h('button', {
        class: 'btn tool',
        'aria-pressed': String(state.threads),
        title: 'Group messages into conversations',
        onclick: () => {
          setThreads(!state.threads);
          route();
        },
      }, iconEl('threads'), h('span', { class: 'tool-label' }, state.threads ? 'Conversations' : 'Messages')),
      btn('Refresh', 'refresh', () => refreshAll()));
    if (r === 'trash' || r === 'junk') {
      ui.listBar.append(h('button', {
        class: 'btn tool danger',
        onclick: async () => {
          if (!confirm(`Delete every message in ${state.byId.get(state.route.mailboxId).name} for good?`)) return;
          doAction('Emptied', () => act.emptyMailbox(state.route.mailboxId).then(() => null));
        },
      }, `Empty ${r === 'trash' ? 'Trash' : 'Spam'}`));
    }
  }
}

async function doAction(label, f, after) {
  if (label === 'Marked as unread' && state.route.emailId && !after) after = () => (location.hash = listHref());
  await act.run(label, f);
  if (after) after();
  await refreshAll();
}

// ---- routing ----------------------------------------------------------

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'm' && parts[1]) return { view: 'mailbox', mailboxId: parts[1], emailId: parts[2] || null };
  if (parts[0] === 'search' && parts[1] !== undefined) return { view: 'search', query: parts[1], emailId: parts[2] || null, mailboxId: null };
  if (parts[0] === 'settings') return { view: 'settings', emailId: null };
  return { view: 'mailbox', mailboxId: roleId('inbox'), emailId: null };
}

let lastListKey = null;

async function route() {
  const r = parseHash();
  if (r.view === 'mailbox' && !state.byId.has(r.mailboxId)) r.mailboxId = roleId('inbox');
  const prev = state.route;
  state.route = { ...prev, ...r };
  document.body.dataset.view = r.view;
  document.body.dataset.pane = r.emailId || r.view === 'settings' ? 'reader' : 'list';
  const listKey = r.view === 'search' ? `s:${r.query}:${state.threads}` : r.view === 'mailbox' ? `m:${r.mailboxId}:${state.threads}` : lastListKey;
  if (listKey !== lastListKey) {
    lastListKey = listKey;
    if (r.view === 'search') {
      ui.search.value = r.query;
      ui.listTitle.textContent = `Search: ${r.query}`;
      ui.list.reset({ filter: parseSearch(r.query) || {}, collapse: state.threads, search: true });
    } else {
      if (document.activeElement !== ui.search) ui.search.value = '';
      const m = state.byId.get(r.mailboxId);
      ui.listTitle.textContent = m ? displayName(m) : '';
      ui.list.reset({ filter: { inMailbox: r.mailboxId }, collapse: state.threads });
    }
    renderListBar();
  }
  renderFolders();
  if (r.view === 'settings') {
    const { renderSettings } = await import('./settings.js');
    renderSettings(ui.reader);
  } else if (r.emailId) {
    if (r.emailId !== prev.emailId || prev.view === 'settings' || !ui.reader.querySelector('.messages')) await openThread(r.emailId);
    ui.list.setCursorTo(r.emailId);
  } else {
    clear(ui.reader);
    ui.reader.append(h('div', { class: 'reader-empty' }, h('span', { html: icon('mail', 'big-icon') }), h('p', null, 'Select a conversation to read it.'), h('p', { class: 'hint' }, 'Press ? for keyboard shortcuts.')));
    ui.list.render(true);
  }
}

export function listHref() {
  return state.route.view === 'search' ? `#/search/${enc(state.route.query)}` : `#/m/${state.route.mailboxId}`;
}

let threadEmails = [];
let threadSig = '';

async function openThread(emailId, keepScroll = false) {
  const top = ui.reader.scrollTop;
  if (!keepScroll) {
    clear(ui.reader);
    ui.reader.append(h('p', { class: 'loading' }, 'Loading…'));
  }
  let emails;
  try {
    emails = await loadThread(emailId);
  } catch (e) {
    clear(ui.reader);
    ui.reader.append(h('p', { class: 'error' }, e.type === 'offline' ? 'This conversation is not available offline.' : `Cannot open: ${e.message}`));
    return;
  }
  if (state.route.emailId !== emailId) return;
  if (!emails.length) {
    location.hash = listHref();
    return;
  }
  // A live refresh redraws only when something visible changed.
  const sig = JSON.stringify(emails.map((e) => [e.id, e.mailboxIds, Object.keys(e.keywords).filter((k) => k !== '$seen').sort()]));
  if (keepScroll && sig === threadSig && ui.reader.querySelector('.messages')) return;
  threadSig = sig;
  threadEmails = renderThread(ui.reader, emails, threadActions());
  ui.list.markRead(emails[0].threadId, emails.map((e) => e.id));
  // A lone draft opened from the list goes straight to the editor.
  if (!keepScroll && emails.length === 1 && emails[0].keywords.$draft) composeFromDraft(emails[0]);
  if (keepScroll) ui.reader.scrollTop = top;
  else {
    ui.reader.scrollTop = 0;
    ui.reader.querySelector('.thread-subject')?.focus({ preventScroll: true });
  }
}

function threadItems() {
  return threadEmails.length ? [{ emailId: threadEmails[threadEmails.length - 1].id, threadId: threadEmails[0].threadId }] : [];
}

function afterThreadAction() {
  const next = ui.list.neighbour(state.route.emailId, 1) || ui.list.neighbour(state.route.emailId, -1);
  location.hash = next ? `${listHref()}/${next.emailId}` : listHref();
}

function threadActions() {
  return {
    toolbar: (emails) => h('div', { class: 'thread-bar' },
      h('a', { class: 'btn tool back', href: listHref(), 'aria-label': 'Back to the list' }, iconEl('back'), h('span', { class: 'tool-label' }, 'Back')),
      ...actionButtons(threadItems, afterThreadAction, { thread: true, flagged: emails.some((e) => e.keywords.$flagged) })),
    reply: (e, all) => openCompose({ mode: all ? 'replyAll' : 'reply', email: e }),
    forward: (e, asAttachment) => openCompose({ mode: asAttachment ? 'forwardAttachment' : 'forward', email: e }),
    editDraft: (e) => composeFromDraft(e),
  };
}

// ---- live updates -----------------------------------------------------

let refreshing = null;
let again = false;

export async function refreshAll() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      await loadMailboxes();
      await ui.list.refresh();
      if (state.route.emailId && state.route.view !== 'settings') await openThread(state.route.emailId, true);
    } catch {
      /* offline */
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) {
    again = false;
    return refreshAll();
  }
}

let events;
let lastStates = {};
function live() {
  if (events) events.close();
  try {
    events = new EventSource(eventSourceUrl(), { withCredentials: true });
  } catch {
    return;
  }
  events.addEventListener('state', (e) => {
    let change;
    try {
      change = JSON.parse(e.data);
    } catch {
      return;
    }
    const s = (change.changed || {})[jmap.accountId];
    if (!s) return;
    // The stream's first event is where it starts: nothing new when the
    // mailbox state is the one the page loaded with (every delivery,
    // flag change or move changes it), so no second load at start.
    const first = !Object.keys(lastStates).length;
    const interesting = first
      ? s.Mailbox !== state.mailboxState
      : ['Email', 'Mailbox', 'Thread'].some((t) => s[t] && s[t] !== lastStates[t]);
    if (s.VacationResponse && s.VacationResponse !== lastStates.VacationResponse) checkVacation();
    lastStates = { ...lastStates, ...s };
    if (interesting) refreshAll();
  });
  let failures = 0;
  events.addEventListener('open', () => {
    failures = 0;
    if (jmap.offline) refreshAll();
  });
  events.addEventListener('error', async () => {
    // Signed out elsewhere (the grant was revoked)? Then stop and say so.
    if (++failures !== 3) return;
    const me = await whoami().catch(() => undefined);
    if (me === null) {
      events.close();
      jmap.onAuthLost();
    }
  });
}

window.addEventListener('online', () => {
  if (jmap.session) refreshAll();
});

// ---- start --------------------------------------------------------------

async function signOut() {
  await logout();
  if (events) events.close();
  // Saved answers belong to this account: gone with the session.
  if ('caches' in window) await caches.delete('lb-data').catch(() => {});
  try {
    const { forgetPush } = await import('./push.js');
    await forgetPush();
  } catch {
    /* ignore */
  }
  location.hash = '';
  showLogin('You are signed out.');
}

let started = false;

export async function checkVacation() {
  try {
    const r = await call('VacationResponse/get', { ids: ['singleton'] });
    ui.vacation.hidden = !(r.list[0] && r.list[0].isEnabled);
  } catch {
    ui.vacation.hidden = true;
  }
}

async function start() {
  await loadSession();
  shell();
  jmap.onOffline(jmap.offline);
  await Promise.all([loadMailboxes(), loadIdentities()]);
  lastListKey = null;
  if (!started) {
    started = true;
    window.addEventListener('hashchange', route);
    bindKeys({ ui, route, listHref, doAction, threadItems, afterThreadAction, openThread: () => threadEmails });
  }
  await route();
  live();
  checkVacation();
  import('./push.js').then((p) => p.rememberForWorker()).catch(() => {});
  document.body.dataset.ready = '1';
}

onChangeMailboxes();
function onChangeMailboxes() {
  import('./state.js').then(({ onChange }) => onChange((w) => {
    if (w === 'mailboxes') {
      renderFolders();
      if (ui.list && !ui.list.selected.size) renderListBar();
    }
  }));
}

jmap.onAuthLost = () => showLogin('Your session ended. Please sign in again.');

if ('serviceWorker' in navigator) {
  const hadController = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => {});
  // A new release took over: this page's files are the old ones.
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (hadController) toast('Letterbox was updated.', { label: 'Reload', run: () => location.reload() }, 60000);
  });
}

async function boot() {
  try {
    await start();
  } catch (e) {
    if (e.type !== 'auth') {
      clear(root);
      root.append(h('main', { class: 'login-page' }, h('p', { class: 'error' }, `Cannot start: ${e.message}`), h('button', { class: 'btn', onclick: () => location.reload() }, 'Retry')));
      console.error(e);
    }
  }
}

(async () => {
  let me = null;
  try {
    me = await whoami();
  } catch {
    me = null;
  }
  if (!me) return showLogin();
  return boot();
})();
