// Settings: theme, notifications, vacation responder, identities and
// signatures (when the server has Identity/set), app passwords, sessions
// (grants), password change (when the server has /api/password).
import { call, request, jmap } from './jmap.js';
import { h, clear, toast } from './util.js';
import { state, loadIdentities } from './state.js';
import { theme, applyTheme } from './theme.js';
import { pushSupported, pushState, enablePush, disablePush } from './push.js';

function section(title, ...body) {
  return h('section', { 'aria-labelledby': `s-${title.replace(/\W/g, '')}` }, h('h2', { id: `s-${title.replace(/\W/g, '')}` }, title), ...body);
}

function field(label, input) {
  if (!input.id) input.id = `f-${Math.random().toString(36).slice(2, 8)}`;
  return [h('label', { for: input.id }, label), input];
}

function when(t) {
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleDateString([], { dateStyle: 'medium' });
}

function date(iso) {
  return iso ? iso.slice(0, 10) : '';
}

function appearance() {
  const sel = h('select', { id: 'set-theme' }, ['system', 'light', 'dark'].map((t) => h('option', { value: t, selected: theme() === t }, t[0].toUpperCase() + t.slice(1))));
  sel.addEventListener('change', () => applyTheme(sel.value));
  return section('Appearance', h('div', { class: 'form' }, field('Theme', sel)));
}

function notifications() {
  const status = h('span', { class: 'note', role: 'status' });
  const btn = h('button', { class: 'btn', type: 'button' }, 'Enable notifications');
  const refresh = async () => {
    const s = await pushState();
    btn.hidden = s === 'unsupported' || s === 'denied';
    btn.textContent = s === 'on' ? 'Turn notifications off' : 'Enable notifications';
    status.textContent = s === 'unsupported' ? 'Not available in this browser.' : s === 'denied' ? 'Blocked in the browser settings.' : s === 'on' ? 'On for this device.' : '';
  };
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      if ((await pushState()) === 'on') await disablePush();
      else await enablePush();
    } catch (e) {
      status.textContent = e.message;
      btn.disabled = false;
      return;
    }
    btn.disabled = false;
    refresh();
  });
  if (pushSupported()) refresh();
  else status.textContent = 'Not available in this browser or on this server.';
  return section('Notifications', h('p', { class: 'note' }, 'Get a notification when new mail arrives, even with the tab closed.'), h('div', { class: 'actions', style: 'grid-column:1' }, btn, status));
}

async function vacation() {
  const body = h('div', { class: 'form' }, h('p', { class: 'note' }, 'Loading…'));
  const sec = section('Vacation responder', body);
  try {
    const r = await call('VacationResponse/get', { ids: ['singleton'] });
    const v = r.list[0] || {};
    clear(body);
    const on = h('input', { type: 'checkbox', id: 'vac-on', checked: !!v.isEnabled });
    const from = h('input', { type: 'date', id: 'vac-from', value: date(v.fromDate) });
    const to = h('input', { type: 'date', id: 'vac-to', value: date(v.toDate) });
    const subject = h('input', { type: 'text', id: 'vac-subject', value: v.subject || '' });
    const text = h('textarea', { id: 'vac-text' });
    text.value = v.textBody || '';
    const save = h('button', { class: 'btn primary', type: 'submit' }, 'Save');
    const form = h('form', { class: 'form', style: 'grid-column:1/-1' },
      ...field('Reply automatically', on), ...field('From (optional)', from), ...field('Until (optional)', to),
      ...field('Subject', subject), ...field('Message', text), h('div', { class: 'actions' }, save));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const patch = {
        isEnabled: on.checked,
        fromDate: from.value ? `${from.value}T00:00:00Z` : null,
        toDate: to.value ? `${to.value}T23:59:59Z` : null,
        subject: subject.value || null,
        textBody: text.value || null,
      };
      const r2 = await call('VacationResponse/set', { update: { singleton: patch } }).catch((x) => ({ notUpdated: { singleton: { description: x.message } } }));
      const err = r2.notUpdated && r2.notUpdated.singleton;
      toast(err ? `Not saved: ${err.description || err.type}` : 'Vacation responder saved');
      if (!err) import('./app.js').then((m) => m.checkVacation()).catch(() => {});
    });
    body.append(form);
  } catch (e) {
    clear(body);
    body.append(h('p', { class: 'note' }, `Not available: ${e.message}`));
  }
  return sec;
}

async function identities() {
  const box = h('div');
  const sec = section('Identities and signature', box);
  await loadIdentities();
  // Identity/set is newer than Identity/get on some servers: ask once.
  const probe = await call('Identity/set', {}, { lenient: true }).catch(() => ({ name: 'error' }));
  const editable = probe.name !== 'error';
  if (!editable) box.append(h('p', { class: 'note' }, 'This server does not let you change identities yet.'));
  for (const i of state.identities) {
    const name = h('input', { type: 'text', value: i.name || '', id: `idn-${i.id}`, class: 'identity-name' });
    const sig = h('textarea', { id: `ids-${i.id}`, class: 'identity-signature' });
    sig.value = i.textSignature || '';
    const replyTo = h('input', { type: 'text', value: (i.replyTo || []).map((a) => a.email).join(', '), id: `idr-${i.id}` });
    const save = h('button', { class: 'btn primary', type: 'submit', disabled: !editable }, 'Save');
    for (const el of [name, sig, replyTo]) el.disabled = !editable;
    const form = h('form', { class: 'form' }, h('strong', { style: 'grid-column:1/-1' }, i.email),
      ...field('Name', name), ...field('Reply-To', replyTo), ...field('Signature', sig), h('div', { class: 'actions' }, save));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const patch = {
        name: name.value,
        textSignature: sig.value,
        replyTo: replyTo.value.trim() ? replyTo.value.split(',').map((s) => ({ name: null, email: s.trim() })) : null,
      };
      try {
        const r = await call('Identity/set', { update: { [i.id]: patch } });
        const err = r.notUpdated && r.notUpdated[i.id];
        if (err) throw new Error(err.description || err.type);
        toast('Identity saved');
        loadIdentities();
      } catch (x) {
        toast(x.type === 'unknownMethod' ? 'This server does not let you change identities yet.' : `Not saved: ${x.message}`);
      }
    });
    box.append(form);
  }
  if (!state.identities.length) box.append(h('p', { class: 'note' }, 'No identities.'));
  return sec;
}

async function appPasswords() {
  const table = h('table');
  const made = h('div', { role: 'status' });
  const name = h('input', { type: 'text', id: 'ap-name', placeholder: 'e.g. Phone mail app', required: true });
  const form = h('form', { class: 'form' }, ...field('New app password', name), h('div', { class: 'actions' }, h('button', { class: 'btn primary', type: 'submit' }, 'Create')));
  const load = async () => {
    const r = await request('GET', '/api/app-passwords');
    clear(table);
    if (!r.ok) {
      table.append(h('tr', null, h('td', null, `Not available (${r.status})`)));
      return;
    }
    table.append(h('tr', null, h('th', null, 'Name'), h('th', null, 'Created'), h('th', null, '')));
    for (const p of r.data) {
      table.append(h('tr', null, h('td', null, p.name), h('td', null, when(p.created)),
        h('td', null, h('button', {
          class: 'btn small danger',
          onclick: async () => {
            if (!confirm(`Revoke the app password "${p.name}"?`)) return;
            const d = await request('DELETE', `/api/app-passwords/${p.id}`);
            toast(d.ok ? 'Revoked' : `Failed (${d.status})`);
            load();
          },
        }, 'Revoke'))));
    }
    if (!r.data.length) table.append(h('tr', null, h('td', { colspan: 3, class: 'note' }, 'None yet.')));
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await request('POST', '/api/app-passwords', { name: name.value });
    clear(made);
    if (r.ok) {
      made.append(h('p', null, `Password for "${r.data.name}" — shown once, copy it now:`), h('p', { class: 'secret' }, r.data.password));
      name.value = '';
    } else made.append(h('p', { class: 'error' }, (r.data && r.data.error) || `Failed (${r.status})`));
    load();
  });
  await load();
  return section('App passwords', h('p', { class: 'note' }, 'For mail apps (IMAP, SMTP, CalDAV…): each gets its own password you can revoke.'), form, made, table);
}

async function sessions() {
  const table = h('table');
  const load = async () => {
    const r = await request('GET', '/api/grants');
    clear(table);
    if (!r.ok) {
      table.append(h('tr', null, h('td', null, `Not available (${r.status})`)));
      return;
    }
    table.append(h('tr', null, h('th', null, 'Client'), h('th', null, 'Since'), h('th', null, '')));
    for (const g of r.data) {
      table.append(h('tr', null, h('td', null, g.clientId === 'webmail' ? 'Webmail' : g.clientId), h('td', null, when(g.created)),
        h('td', null, h('button', {
          class: 'btn small danger',
          onclick: async () => {
            if (!confirm('Sign this session out? (If it is this one, you will be signed out.)')) return;
            const d = await request('DELETE', `/api/grants/${g.id}`);
            toast(d.ok ? 'Signed out' : `Failed (${d.status})`);
            load();
          },
        }, 'Sign out'))));
    }
  };
  await load();
  return section('Sessions and connected apps', table);
}

async function password() {
  // POST-only route: a GET answers 405 when it exists, 404 when not.
  const probe = await request('GET', '/api/password').catch(() => ({ status: 0 }));
  if (probe.status === 404 || probe.status === 0) {
    return section('Password', h('p', { class: 'note' }, 'Changing the password here is not available on this server; ask your administrator.'));
  }
  const old = h('input', { type: 'password', id: 'pw-old', autocomplete: 'current-password', required: true });
  const nw = h('input', { type: 'password', id: 'pw-new', autocomplete: 'new-password', required: true });
  const again = h('input', { type: 'password', id: 'pw-again', autocomplete: 'new-password', required: true });
  const status = h('span', { class: 'note', role: 'status' });
  const form = h('form', { class: 'form' }, ...field('Current password', old), ...field('New password', nw), ...field('New password again', again),
    h('div', { class: 'actions' }, h('button', { class: 'btn primary', type: 'submit' }, 'Change password'), status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (nw.value !== again.value) {
      status.textContent = 'The new passwords differ.';
      return;
    }
    const r = await request('POST', '/api/password', { old: old.value, new: nw.value });
    if (r.status === 404 || r.status === 405) status.textContent = 'This server does not support changing the password here yet.';
    else status.textContent = r.ok ? 'Password changed.' : (r.data && r.data.error) || `Failed (${r.status})`;
    if (r.ok) {
      form.reset();
      // The server signs every other session out and renews ours.
      if (r.data && r.data.csrf) jmap.csrf = r.data.csrf;
      import('./push.js').then((p) => p.rememberForWorker()).catch(() => {});
    }
  });
  return section('Password', form);
}

export async function renderSettings(root) {
  clear(root);
  const page = h('div', { class: 'settings' },
    h('div', { class: 'thread-bar' }, h('a', { class: 'btn tool back', href: '#/', 'aria-label': 'Back to mail' }, 'Back to mail')),
    h('h1', null, 'Settings'), h('p', { class: 'note' }, `Signed in as ${jmap.username}`));
  root.append(page);
  page.append(appearance(), notifications());
  for (const part of [vacation, identities, appPasswords, sessions]) {
    try {
      page.append(await part());
    } catch (e) {
      page.append(section(part.name, h('p', { class: 'error' }, e.message)));
    }
  }
  page.append(await password());
}
