// Reading a conversation: every email of the thread, plain text escaped
// and linkified, HTML sanitised into a sandboxed iframe (no scripts, own
// CSP, remote images blocked until allowed), inline cid: images, and the
// attachments with download and preview.
import { api, call, ref, downloadUrl, jmap } from './jmap.js';
import { h, clear, longDate, fmtSize, addrName, addrListText, linkify, initials, hue, toast } from './util.js';
import { iconEl } from './icons.js';
import { sanitize, frameDocument, htmlToText } from './sanitize.js';
import { state, roleId } from './state.js';

export const BODY_PROPS = ['threadId', 'mailboxIds', 'keywords', 'from', 'to', 'cc', 'bcc', 'replyTo', 'subject', 'sentAt', 'receivedAt',
  'messageId', 'inReplyTo', 'references', 'preview', 'hasAttachment', 'attachments', 'textBody', 'htmlBody', 'bodyValues', 'blobId', 'size'];

const IMG_KEY = 'lb.images';
const allowedNow = new Set(); // emails whose images were loaded this session
function trustedSenders() {
  try {
    return new Set(JSON.parse(localStorage.getItem(IMG_KEY) || '[]'));
  } catch {
    return new Set();
  }
}
function trustSender(email) {
  const s = trustedSenders();
  s.add(email.toLowerCase());
  localStorage.setItem(IMG_KEY, JSON.stringify([...s]));
}

/** The emails of the thread that contains emailId, with bodies. */
export async function loadThread(emailId) {
  const rs = await api([
    ['Email/get', { ids: [emailId], properties: ['threadId'] }],
    ['Thread/get', { '#ids': ref(0, 'Email/get', '/list/*/threadId') }],
    ['Email/get', {
      '#ids': ref(1, 'Thread/get', '/list/*/emailIds'),
      properties: BODY_PROPS,
      fetchHTMLBodyValues: true,
      fetchTextBodyValues: true,
      maxBodyValueBytes: 2000000,
    }],
  ]);
  const emails = rs[2].list;
  emails.sort((a, b) => (a.receivedAt < b.receivedAt ? -1 : 1));
  return emails;
}

/** Emails worth showing: Trash and Junk only when viewing those. */
function visible(emails) {
  const trash = roleId('trash');
  const junk = roleId('junk');
  const cur = state.route.mailboxId;
  if (cur === trash || cur === junk) return emails;
  const l = emails.filter((e) => !(e.mailboxIds[trash] || e.mailboxIds[junk]));
  return l.length ? l : emails;
}

/** The plain text of an email (HTML-only mail converted), for quoting. */
export function textOf(e) {
  const parts = e.textBody || [];
  return parts.map((p) => {
    const v = (e.bodyValues[p.partId] || {}).value || '';
    return p.type === 'text/html' ? htmlToText(v) : v;
  }).join('\n');
}

function cidMap(e) {
  const map = new Map();
  for (const p of [...(e.attachments || []), ...(e.htmlBody || [])]) {
    if (p.cid && p.blobId) map.set(p.cid.replace(/^<|>$/g, ''), downloadUrl(p.blobId, p.name || 'image', p.type));
  }
  return map;
}

function htmlOf(e) {
  const parts = e.htmlBody || [];
  if (!parts.some((p) => p.type === 'text/html')) return null;
  return parts.map((p) => {
    if (p.type === 'text/html') return (e.bodyValues[p.partId] || {}).value || '';
    if (p.type === 'text/plain') return `<pre>${((e.bodyValues[p.partId] || {}).value || '').replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c])}</pre>`;
    if (p.type && p.type.startsWith('image/') && p.blobId) return `<img src="${downloadUrl(p.blobId, p.name || 'image', p.type)}" alt="">`;
    return '';
  }).join('\n');
}

/** Plain text with quoted blocks set apart. */
function textView(text) {
  const box = h('div', { class: 'text-body' });
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let i = 0;
  while (i < lines.length) {
    const quoted = /^\s*>/.test(lines[i]);
    let j = i;
    while (j < lines.length && /^\s*>/.test(lines[j]) === quoted) j++;
    const chunk = lines.slice(i, j).join('\n');
    if (quoted) box.append(h('blockquote', { class: 'quote' }, linkify(chunk.replace(/^\s*> ?/gm, ''))));
    else box.append(linkify(chunk + (j < lines.length ? '\n' : '')));
    i = j;
  }
  return box;
}

function frameFor(e, allowRemote, onRemote) {
  const cids = cidMap(e);
  const used = new Set();
  const clean = sanitize(htmlOf(e), {
    allowRemote,
    cid: (c) => {
      c = c.replace(/^<|>$/g, '');
      used.add(c);
      return cids.get(c) || null;
    },
  });
  const frame = h('iframe', {
    class: 'mail-frame',
    title: `Message from ${addrName((e.from || [])[0])}`,
    sandbox: 'allow-same-origin allow-popups allow-popups-to-escape-sandbox',
    referrerpolicy: 'no-referrer',
    srcdoc: frameDocument(clean, allowRemote),
  });
  const fit = () => {
    try {
      const d = frame.contentDocument;
      if (d && d.documentElement) frame.style.height = `${Math.min(d.documentElement.scrollHeight + 4, 40000)}px`;
    } catch {
      /* not ours */
    }
  };
  frame.addEventListener('load', () => {
    fit();
    try {
      new ResizeObserver(fit).observe(frame.contentDocument.body);
    } catch {
      /* ignore */
    }
  });
  if (clean.remote && !allowRemote) onRemote(clean.remote);
  return { frame, usedCids: used };
}

async function preview(att) {
  const url = downloadUrl(att.blobId, att.name, att.type);
  let objUrl;
  try {
    const r = await fetch(url, { credentials: 'same-origin' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    objUrl = URL.createObjectURL(new Blob([await r.arrayBuffer()], { type: att.type }));
  } catch (e) {
    toast(`Cannot preview: ${e.message}`);
    return;
  }
  const close = () => {
    dlg.close();
    dlg.remove();
    URL.revokeObjectURL(objUrl);
  };
  const body = att.type === 'application/pdf'
    ? h('iframe', { class: 'preview-pdf', src: objUrl, title: att.name })
    : h('img', { class: 'preview-img', src: objUrl, alt: att.name });
  const dlg = h('dialog', { class: 'preview-dlg', 'aria-label': `Preview of ${att.name}` },
    h('div', { class: 'preview-bar' }, h('span', null, att.name || 'attachment'),
      h('a', { class: 'btn', href: url, download: att.name || 'attachment' }, 'Download'),
      h('button', { class: 'btn', onclick: close }, 'Close')),
    body);
  dlg.addEventListener('cancel', close);
  document.body.append(dlg);
  dlg.showModal();
}

function attachmentList(e, usedCids) {
  const list = (e.attachments || []).filter((a) => !(a.cid && usedCids.has(a.cid.replace(/^<|>$/g, ''))));
  if (!list.length) return null;
  return h('ul', { class: 'attachments', 'aria-label': 'Attachments' }, list.map((a) => {
    const name = a.name || (a.type === 'message/rfc822' ? 'message.eml' : 'attachment');
    const canPreview = (a.type || '').startsWith('image/') || a.type === 'application/pdf';
    return h('li', { class: 'attachment' },
      iconEl('clip'),
      h('span', { class: 'att-name', title: name }, name),
      h('span', { class: 'att-meta' }, `${fmtSize(a.size)} · ${a.type || ''}`),
      canPreview ? h('button', { class: 'btn small', onclick: () => preview({ ...a, name }) }, 'Preview') : null,
      h('a', { class: 'btn small', href: downloadUrl(a.blobId, name, a.type), download: name, 'aria-label': `Download ${name}` }, 'Download'));
  }));
}

/**
 * Renders the thread into `root`. `actions` has reply(e, all), forward(e,
 * asAttachment), editDraft(e), and toolbar callbacks.
 */
export function renderThread(root, all, actions) {
  clear(root);
  const emails = visible(all);
  const last = emails[emails.length - 1];
  const trusted = trustedSenders();
  root.append(actions.toolbar(emails));
  root.append(h('h1', { class: 'thread-subject', tabindex: '-1' }, last.subject || '(no subject)'));
  const list = h('ol', { class: 'messages' });
  root.append(list);
  emails.forEach((e, i) => {
    const open = i === emails.length - 1 || !e.keywords.$seen || e.keywords.$draft && i === emails.length - 1;
    list.append(messageCard(e, open, trusted, actions));
  });
  const unseen = emails.filter((e) => !e.keywords.$seen).map((e) => e.id);
  if (unseen.length && !jmap.offline) {
    call('Email/set', { update: Object.fromEntries(unseen.map((id) => [id, { 'keywords/$seen': true }])) }).catch(() => {});
  }
  return emails;
}

function messageCard(e, open, trusted, actions) {
  const from = (e.from || [])[0] || { email: '' };
  const li = h('li', { class: 'message' + (open ? ' open' : ''), dataset: { id: e.id } });
  const avatar = h('span', { class: 'avatar', style: `--h:${hue(from.email)}`, 'aria-hidden': 'true' }, initials(from.name || from.email));
  const head = h('button', { class: 'msg-head', 'aria-expanded': String(open) },
    avatar,
    h('span', { class: 'msg-from' }, h('strong', null, from.name || from.email), from.name ? h('span', { class: 'addr' }, ` <${from.email}>`) : null),
    h('span', { class: 'msg-date' }, longDate(e.receivedAt)),
    h('span', { class: 'msg-preview' }, e.preview || ''));
  head.addEventListener('click', () => {
    const o = li.classList.toggle('open');
    head.setAttribute('aria-expanded', String(o));
    if (o && !li.querySelector('.msg-body')) fill();
  });
  li.append(head);
  const fill = () => {
    const body = h('div', { class: 'msg-body' });
    const details = h('div', { class: 'msg-details' },
      h('div', null, h('span', { class: 'label' }, 'To: '), addrListText(e.to) || '—'),
      e.cc && e.cc.length ? h('div', null, h('span', { class: 'label' }, 'Cc: '), addrListText(e.cc)) : null);
    const more = h('details', { class: 'more' },
      h('summary', { class: 'btn', 'aria-label': 'More actions' }, iconEl('more'), h('span', { class: 'tool-label' }, 'More')),
      h('div', { class: 'menu', role: 'menu' },
        e.keywords.$draft ? null : h('button', { class: 'menu-item', role: 'menuitem', onclick: () => { more.open = false; actions.forward(e, true); } }, 'Forward as attachment'),
        h('a', { class: 'menu-item', role: 'menuitem', href: downloadUrl(e.blobId, 'message.eml', 'message/rfc822'), download: 'message.eml' }, 'Download original (.eml)')));
    more.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && more.open) {
        ev.stopPropagation();
        more.open = false;
        more.querySelector('summary').focus();
      }
    });
    const buttons = h('div', { class: 'msg-actions' },
      e.keywords.$draft
        ? h('button', { class: 'btn primary', onclick: () => actions.editDraft(e) }, iconEl('pen'), 'Edit draft')
        : [
          h('button', { class: 'btn', onclick: () => actions.reply(e, false) }, iconEl('reply'), h('span', { class: 'lbl' }, 'Reply')),
          h('button', { class: 'btn', onclick: () => actions.reply(e, true) }, iconEl('replyAll'), h('span', { class: 'lbl' }, 'Reply all')),
          h('button', { class: 'btn', onclick: () => actions.forward(e, false) }, iconEl('forward'), h('span', { class: 'lbl' }, 'Forward')),
        ],
      more);
    body.append(details, buttons);
    const content = h('div', { class: 'msg-content' });
    body.append(content);
    let used = new Set();
    const draw = (allowRemote) => {
      clear(content);
      if (htmlOf(e) !== null) {
        const bar = h('div', { class: 'images-bar', role: 'status', hidden: true });
        content.append(bar);
        const r = frameFor(e, allowRemote, () => {
          bar.hidden = false;
          bar.append(h('span', null, 'Remote images blocked.'),
            h('button', {
              class: 'btn small',
              onclick: () => {
                allowedNow.add(e.id);
                draw(true);
              },
            }, 'Load images'),
            from.email ? h('button', {
              class: 'btn small',
              onclick: () => {
                trustSender(from.email);
                draw(true);
              },
            }, `Always load from ${from.email}`) : null);
        });
        used = r.usedCids;
        content.append(r.frame);
      } else content.append(textView(textOf(e)));
    };
    draw(allowedNow.has(e.id) || trusted.has(from.email.toLowerCase()));
    const att = attachmentList(e, used);
    if (att) body.append(att);
    li.append(body);
  };
  if (open) fill();
  return li;
}

