// Small DOM and formatting helpers shared by the views.

/** Builds an element: h('button', {class: 'x', onclick: f}, 'text', child). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'html') el.innerHTML = v; // trusted constants only (icons)
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A list date: the time today, day and month this year, else with the year. */
export function shortDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) {
    return d.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
  }
  const s = `${d.getDate()} ${MONTHS[d.getMonth()]}`;
  return d.getFullYear() === now.getFullYear() ? s : `${s} ${d.getFullYear()}`;
}

export function longDate(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtSize(n) {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const URL_RE = /\b(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]|mailto:[^\s<>"']+|www\.[^\s<>"']+[^\s<>"'.,;:!?)\]}])/gi;

/** Plain text as DOM nodes, with URLs as links opening in a new tab. */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    if (m.index > last) frag.append(text.slice(last, m.index));
    const href = m[0].startsWith('www.') ? `https://${m[0]}` : m[0];
    frag.append(h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

export function addrName(a) {
  return a ? a.name || a.email : '';
}

export function addrFull(a) {
  return a.name ? `${a.name} <${a.email}>` : a.email;
}

export function addrListText(list) {
  return (list || []).map(addrFull).join(', ');
}

/** "Ann <a@x>, b@y" -> [{name, email}], splitting on commas outside quotes. */
export function parseAddrs(s) {
  const out = [];
  let cur = '';
  let quoted = false;
  for (const ch of s || '') {
    if (ch === '"') quoted = !quoted;
    if ((ch === ',' || ch === ';') && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const m = p.match(/^(.*?)\s*<([^>]+)>$/);
      if (m) return { name: m[1].replace(/^"|"$/g, '').trim() || null, email: m[2].trim() };
      return { name: null, email: p };
    });
}

export function validEmail(e) {
  return /^[^\s@<>]+@[^\s@<>]+$/.test(e);
}

export function debounce(f, ms) {
  let t;
  const d = (...a) => {
    clearTimeout(t);
    t = setTimeout(() => f(...a), ms);
  };
  d.flush = () => {
    clearTimeout(t);
    f();
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

let toastTimer;
/** A status message at the bottom; with an action button (e.g. Undo). */
export function toast(text, action, ms = 5000) {
  const box = document.getElementById('toast');
  if (!box) return;
  clear(box);
  box.append(h('span', null, text));
  if (action) {
    box.append(
      h('button', {
        class: 'link',
        onclick: () => {
          box.hidden = true;
          action.run();
        },
      }, action.label),
    );
  }
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), ms);
}

export function hideToast() {
  const box = document.getElementById('toast');
  if (box) box.hidden = true;
}

export function b64url(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromB64url(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function initials(name) {
  const parts = String(name || '?').replace(/[^\p{L}\p{N} ]/gu, ' ').trim().split(/\s+/);
  return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
}

/** A stable hue for an address (avatars). */
export function hue(s) {
  let x = 0;
  for (const c of String(s)) x = (x * 31 + c.charCodeAt(0)) % 360;
  return x;
}

/**
 * A small modal form: fields [{name, label, value, type, options}], buttons
 * [{value, label, primary, danger}]. Resolves to {button, values} or null.
 */
export function ask({ title, fields = [], buttons = [{ value: 'ok', label: 'OK', primary: true }], note }) {
  return new Promise((resolve) => {
    const inputs = {};
    const form = h('form', { method: 'dialog', class: 'ask' }, h('h2', { id: 'ask-title' }, title), note ? h('p', { class: 'note' }, note) : null);
    for (const f of fields) {
      const id = `ask-${f.name}`;
      const input = f.options
        ? h('select', { id, name: f.name }, f.options.map(([v, l]) => h('option', { value: v, selected: v === f.value }, l)))
        : h('input', { id, name: f.name, type: f.type || 'text', value: f.value || '', required: !!f.required, placeholder: f.placeholder || '' });
      inputs[f.name] = input;
      form.append(h('label', { for: id }, f.label), input);
    }
    const dlg = h('dialog', { class: 'ask-dlg', 'aria-labelledby': 'ask-title' }, form);
    let chosen = null;
    const bar = h('div', { class: 'ask-buttons' });
    for (const b of buttons) {
      bar.append(h('button', {
        class: `btn${b.primary ? ' primary' : ''}${b.danger ? ' danger' : ''}`,
        type: b.primary ? 'submit' : 'button',
        onclick: b.primary ? () => (chosen = b.value) : () => {
          chosen = b.value;
          dlg.close();
        },
      }, b.label));
    }
    bar.append(h('button', { class: 'btn subtle', type: 'button', onclick: () => dlg.close() }, 'Cancel'));
    form.append(bar);
    form.addEventListener('submit', () => {
      if (!chosen) chosen = (buttons.find((b) => b.primary) || buttons[0]).value;
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (!chosen) return resolve(null);
      const values = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value]));
      resolve({ button: chosen, values });
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = Object.values(inputs)[0];
    if (first) {
      first.focus();
      if (first.select) first.select();
    }
  });
}

/** A mailbox name as shown (the server's INBOX reads "Inbox"). */
export function displayName(m) {
  return m.role === 'inbox' && /^inbox$/i.test(m.name) ? 'Inbox' : m.name;
}
