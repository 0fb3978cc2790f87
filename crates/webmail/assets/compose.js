// Writing mail: new, reply, reply all, forward (inline or as attachment),
// drafts saved to Drafts as you type and resumable, plain or rich text,
// attachments by picker or drop with upload progress, recipients
// completed from the Sent folder, and undo send.
import { api, call, ref, upload, jmap, submissionExtension, capability } from './jmap.js';
import { h, clear, addrListText, parseAddrs, validEmail, debounce, toast, longDate, fmtSize, addrFull, ask } from './util.js';
import { iconEl } from './icons.js';
import { state, roleId, myAddresses, loadMailboxes } from './state.js';
import { textOf } from './thread.js';
import { sanitize, htmlToText } from './sanitize.js';

const UNDO_SECONDS = 8;
let current = null;
let pending = 0; // sends waiting out the undo delay in this page

window.addEventListener('beforeunload', (e) => {
  if (pending || (current && current.dirty)) e.preventDefault();
});
let known = null; // addresses for completion

function prefixed(prefix, subject) {
  const s = subject || '';
  return new RegExp(`^${prefix}:`, 'i').test(s) ? s : `${prefix}: ${s}`;
}

function quote(text) {
  return text.replace(/\s+$/, '').split('\n').map((l) => (l.startsWith('>') ? `>${l}` : `> ${l}`)).join('\n');
}

function identityFor(e) {
  const ids = state.identities;
  if (!ids.length) return null;
  if (e) {
    const mine = [...(e.to || []), ...(e.cc || []), ...(e.bcc || [])].map((a) => a.email.toLowerCase());
    const hit = ids.find((i) => mine.includes(i.email.toLowerCase()));
    if (hit) return hit;
  }
  return ids[0];
}

function signature(identity) {
  return identity && identity.textSignature ? `\n\n-- \n${identity.textSignature}` : '';
}

/** The initial fields for a compose mode. */
function initial({ mode, email: e }) {
  const me = myAddresses();
  const ident = identityFor(e);
  const d = { to: '', cc: '', bcc: '', subject: '', text: signature(ident), attachments: [], inReplyTo: null, references: null, identityId: ident && ident.id };
  if (!e) return d;
  const from = (e.from || [])[0] || { email: '' };
  const header = `On ${longDate(e.sentAt || e.receivedAt)}, ${from.name || from.email} wrote:`;
  if (mode === 'reply' || mode === 'replyAll') {
    const to = e.replyTo && e.replyTo.length ? e.replyTo : e.from || [];
    let cc = [];
    let toList = to;
    if (mode === 'replyAll') {
      const seen = new Set(toList.map((a) => a.email.toLowerCase()));
      const rest = [...(e.to || []), ...(e.cc || [])].filter((a) => {
        const k = a.email.toLowerCase();
        if (seen.has(k) || me.has(k)) return false;
        seen.add(k);
        return true;
      });
      if (toList.every((a) => me.has(a.email.toLowerCase()))) toList = e.to || [];
      cc = rest;
    }
    d.to = addrListText(toList.filter((a) => mode !== 'replyAll' || !me.has(a.email.toLowerCase()) || toList.length === 1));
    d.cc = addrListText(cc);
    d.subject = prefixed('Re', e.subject);
    d.text = `${signature(ident)}\n\n${header}\n${quote(textOf(e) || e.preview || '')}\n`;
    d.inReplyTo = e.messageId || null;
    d.references = [...(e.references || []), ...(e.messageId || [])];
    d.replyTo = e.id;
  } else if (mode === 'forward') {
    d.subject = prefixed('Fwd', e.subject);
    d.text = `${signature(ident)}\n\n---------- Forwarded message ----------\nFrom: ${addrListText(e.from)}\nDate: ${longDate(e.sentAt || e.receivedAt)}\nSubject: ${e.subject || ''}\nTo: ${addrListText(e.to)}\n${e.cc && e.cc.length ? `Cc: ${addrListText(e.cc)}\n` : ''}\n${textOf(e)}`;
    d.attachments = (e.attachments || []).map((a) => ({ blobId: a.blobId, name: a.name, type: a.type, size: a.size, cid: a.cid, disposition: a.disposition }));
    d.references = [...(e.references || []), ...(e.messageId || [])];
  } else if (mode === 'forwardAttachment') {
    d.subject = prefixed('Fwd', e.subject);
    d.attachments = [{ blobId: e.blobId, name: `${(e.subject || 'message').replace(/[\\/:*?"<>|]/g, '_')}.eml`, type: 'message/rfc822', size: e.size }];
    d.references = [...(e.references || []), ...(e.messageId || [])];
  }
  return d;
}

async function addresses() {
  if (known) return known;
  known = new Map();
  const sent = roleId('sent');
  try {
    const rs = await api([
      ['Email/query', { filter: sent ? { inMailbox: sent } : null, sort: [{ property: 'receivedAt', isAscending: false }], limit: 300 }],
      ['Email/get', { '#ids': ref(0, 'Email/query', '/ids'), properties: ['to', 'cc', 'bcc'] }],
    ]);
    for (const e of rs[1].list) {
      for (const a of [...(e.to || []), ...(e.cc || []), ...(e.bcc || [])]) {
        const k = a.email.toLowerCase();
        if (!known.has(k)) known.set(k, a);
      }
    }
  } catch {
    /* offline */
  }
  return known;
}

function recipientField(label, id, value) {
  const input = h('input', { id, type: 'text', value, autocomplete: 'off', 'aria-autocomplete': 'list', 'aria-controls': `${id}-list`, spellcheck: 'false', multiple: true });
  const list = h('ul', { class: 'suggest', id: `${id}-list`, role: 'listbox', hidden: true });
  let active = -1;
  let options = [];
  const lastToken = () => input.value.split(/[,;]/).pop().trim().toLowerCase();
  const pick = (a) => {
    const parts = input.value.split(/[,;]/);
    parts[parts.length - 1] = ` ${addrFull(a)}`;
    input.value = parts.join(',').replace(/^\s+/, '') + ', ';
    list.hidden = true;
    input.focus();
    input.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const show = async () => {
    const t = lastToken();
    if (t.length < 1) {
      list.hidden = true;
      return;
    }
    const all = await addresses();
    options = [...all.values()].filter((a) => a.email.toLowerCase().includes(t) || (a.name || '').toLowerCase().includes(t)).slice(0, 8);
    clear(list);
    active = -1;
    options.forEach((a, i) => {
      const li = h('li', { role: 'option', id: `${id}-opt-${i}`, class: 'suggest-item' }, addrFull(a));
      li.addEventListener('mousedown', (ev) => {
        ev.preventDefault();
        pick(a);
      });
      list.append(li);
    });
    list.hidden = !options.length;
  };
  input.addEventListener('input', (ev) => {
    if (ev.isTrusted !== false) show();
  });
  input.addEventListener('keydown', (ev) => {
    if (list.hidden) return;
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      active = (active + (ev.key === 'ArrowDown' ? 1 : -1) + options.length) % options.length;
      [...list.children].forEach((c, i) => c.setAttribute('aria-selected', String(i === active)));
      input.setAttribute('aria-activedescendant', `${id}-opt-${active}`);
    } else if ((ev.key === 'Enter' || ev.key === 'Tab') && active >= 0) {
      ev.preventDefault();
      pick(options[active]);
    } else if (ev.key === 'Escape') {
      ev.stopPropagation();
      list.hidden = true;
    }
  });
  input.addEventListener('blur', () => setTimeout(() => (list.hidden = true), 150));
  return { input, row: h('div', { class: 'field' }, h('label', { for: id }, label), h('div', { class: 'suggest-wrap' }, input, list)) };
}

export function composeFromDraft(e) {
  const html = (e.htmlBody || []).find((p) => p.type === 'text/html');
  const d = {
    to: addrListText(e.to),
    cc: addrListText(e.cc),
    bcc: addrListText(e.bcc),
    subject: e.subject || '',
    text: textOf(e),
    html: html ? sanitize((e.bodyValues[html.partId] || {}).value || '').html : null,
    attachments: (e.attachments || []).map((a) => ({ blobId: a.blobId, name: a.name, type: a.type, size: a.size })),
    inReplyTo: e.inReplyTo,
    references: e.references,
    draftId: e.id,
    identityId: (identityFor(e) || {}).id,
  };
  open(d);
}

export function openCompose(opts) {
  open(initial(opts), opts);
}

function open(d) {
  if (current) {
    if (!current.close(true)) return;
  }
  if (jmap.offline) {
    toast('You are offline: writing mail needs the server.');
    return;
  }
  known = null; // Sent changes: completions are read again per message
  const c = { ...d, uploads: 0, rich: !!d.html, dirty: false, saving: null };
  const to = recipientField('To', 'c-to', d.to);
  const cc = recipientField('Cc', 'c-cc', d.cc);
  const bcc = recipientField('Bcc', 'c-bcc', d.bcc);
  const showCc = !!(d.cc || d.bcc);
  cc.row.hidden = !showCc;
  bcc.row.hidden = !showCc;
  const subject = h('input', { id: 'c-subject', type: 'text', value: d.subject });
  const fromSel = h('select', { id: 'c-from', 'aria-label': 'From' }, state.identities.map((i) => h('option', { value: i.id, selected: i.id === d.identityId }, addrFull(i))));
  const textarea = h('textarea', { id: 'c-body', class: 'c-text', 'aria-label': 'Message' });
  textarea.value = d.text || '';
  const editor = h('div', { class: 'c-rich', contenteditable: 'true', role: 'textbox', 'aria-multiline': 'true', 'aria-label': 'Message', hidden: true });
  const fmtBar = h('div', { class: 'fmt-bar', role: 'toolbar', 'aria-label': 'Formatting', hidden: true },
    fmt('Bold', 'bold', () => document.execCommand('bold')),
    fmt('Italic', 'italic', () => document.execCommand('italic')),
    fmt('Link', 'link', async () => {
      const sel = window.getSelection();
      const range = sel.rangeCount ? sel.getRangeAt(0).cloneRange() : null;
      const a = await ask({ title: 'Insert link', fields: [{ name: 'url', label: 'Address', type: 'url', placeholder: 'https://', required: true }], buttons: [{ value: 'ok', label: 'Insert', primary: true }] });
      editor.focus();
      if (range) {
        sel.removeAllRanges();
        sel.addRange(range);
      }
      const u = a && a.values.url.trim();
      if (!u || !/^(https?:|mailto:)/i.test(u)) return;
      if (range && !range.collapsed) document.execCommand('createLink', false, u);
      else document.execCommand('insertHTML', false, `<a href="${u.replace(/[&"<>]/g, (c) => ({ '&': '&amp;', '"': '&quot;', '<': '&lt;', '>': '&gt;' })[c])}">${u.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c])}</a>`);
      changed();
    }),
    fmt('Bulleted list', 'list', () => document.execCommand('insertUnorderedList')),
    fmt('Numbered list', 'olist', () => document.execCommand('insertOrderedList')));
  const richToggle = h('button', { type: 'button', class: 'btn small', 'aria-pressed': 'false' }, 'Rich text');
  const setRich = (on) => {
    if (on && !c.rich) {
      editor.innerHTML = '';
      for (const line of textarea.value.split('\n')) editor.append(h('div', null, line || h('br')));
    } else if (!on && c.rich) textarea.value = htmlToText(editor.innerHTML);
    c.rich = on;
    editor.hidden = !on;
    fmtBar.hidden = !on;
    textarea.hidden = on;
    richToggle.setAttribute('aria-pressed', String(on));
  };
  richToggle.addEventListener('click', () => setRich(!c.rich));
  if (d.html) {
    editor.innerHTML = d.html;
    c.rich = false;
    setRich(true);
    editor.innerHTML = d.html;
  }
  const attList = h('ul', { class: 'c-attachments', 'aria-label': 'Attachments' });
  const file = h('input', { type: 'file', multiple: true, id: 'c-file', class: 'visually-hidden' });
  const status = h('span', { class: 'c-status', role: 'status' });
  const send = h('button', { class: 'btn primary', type: 'submit' }, 'Send');
  const ccToggle = h('button', { type: 'button', class: 'btn small', onclick: () => { cc.row.hidden = false; bcc.row.hidden = false; ccToggle.hidden = true; } , hidden: showCc }, 'Cc/Bcc');
  const title = d.replyTo ? 'Reply' : d.subject && /^fwd:/i.test(d.subject) ? 'Forward' : d.draftId ? 'Draft' : 'New message';
  const form = h('form', { class: 'compose', 'aria-label': title },
    h('div', { class: 'c-head' }, h('h2', null, title),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close (draft is kept)', title: 'Close (draft is kept)', onclick: () => c.close() }, iconEl('close'))),
    state.identities.length > 1 ? h('div', { class: 'field' }, h('label', { for: 'c-from' }, 'From'), fromSel) : null,
    h('div', { class: 'field-row' }, to.row, ccToggle), cc.row, bcc.row,
    h('div', { class: 'field' }, h('label', { for: 'c-subject' }, 'Subject'), subject),
    fmtBar, textarea, editor, attList,
    h('div', { class: 'c-foot' }, send,
      h('label', { class: 'btn', for: 'c-file' }, iconEl('clip'), 'Attach'), file, richToggle, status,
      h('button', { type: 'button', class: 'btn subtle danger', onclick: () => discard() }, 'Discard')));
  const box = h('div', { class: 'compose-wrap', role: 'dialog', 'aria-modal': 'false', 'aria-label': title }, form);
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !e.defaultPrevented) {
      e.preventDefault();
      c.close();
    } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  document.body.append(box);
  document.body.classList.add('composing');
  document.body.classList.remove('nav-open');

  function fmt(label, ic, f) {
    const b = h('button', { type: 'button', class: 'icon-btn', 'aria-label': label, title: label }, iconEl(ic));
    b.addEventListener('mousedown', (e) => e.preventDefault());
    b.addEventListener('click', () => {
      editor.focus();
      f();
      changed();
    });
    return b;
  }

  function renderAtts() {
    clear(attList);
    c.attachments.forEach((a, i) => {
      const li = h('li', { class: 'c-att' }, iconEl('clip'), h('span', { class: 'att-name' }, a.name || 'attachment'),
        h('span', { class: 'att-meta' }, a.progress != null && a.progress < 1 ? `${Math.round(a.progress * 100)}%` : fmtSize(a.size)),
        a.progress != null && a.progress < 1 ? h('progress', { max: 1, value: a.progress, 'aria-label': `Uploading ${a.name}` }) : null,
        h('button', {
          type: 'button', class: 'icon-btn tiny', 'aria-label': `Remove ${a.name}`,
          onclick: () => { c.attachments.splice(i, 1); renderAtts(); changed(); },
        }, iconEl('close')));
      attList.append(li);
    });
  }
  renderAtts();

  async function addFiles(files) {
    const max = (capability('urn:ietf:params:jmap:core') || {}).maxSizeUpload || Infinity;
    for (const f of files) {
      if (f.size > max) {
        toast(`${f.name} is too large (the limit is ${fmtSize(max)}).`);
        continue;
      }
      const a = { name: f.name, type: f.type || 'application/octet-stream', size: f.size, progress: 0 };
      c.attachments.push(a);
      c.uploads++;
      renderAtts();
      try {
        const r = await upload(f, (p) => {
          a.progress = p;
          renderAtts();
        });
        a.blobId = r.blobId;
        a.progress = 1;
      } catch (e) {
        c.attachments.splice(c.attachments.indexOf(a), 1);
        toast(`${f.name}: ${e.message}`);
      } finally {
        c.uploads--;
        renderAtts();
        changed();
      }
    }
  }
  file.addEventListener('change', () => {
    addFiles([...file.files]);
    file.value = '';
  });
  box.addEventListener('dragover', (e) => {
    if (e.dataTransfer.types.includes('Files')) {
      e.preventDefault();
      box.classList.add('drop');
    }
  });
  box.addEventListener('dragleave', (e) => {
    if (e.target === box) box.classList.remove('drop');
  });
  box.addEventListener('drop', (e) => {
    if (!e.dataTransfer.files.length) return;
    e.preventDefault();
    box.classList.remove('drop');
    addFiles([...e.dataTransfer.files]);
  });

  function email(draft = true) {
    const ident = state.identities.find((i) => i.id === fromSel.value) || state.identities[0];
    const drafts = roleId('drafts');
    const e = {
      mailboxIds: { [drafts]: true },
      keywords: { $draft: true, $seen: true },
      from: ident ? [{ name: ident.name || null, email: ident.email }] : [{ email: jmap.username }],
      to: parseAddrs(to.input.value),
      cc: parseAddrs(cc.input.value),
      bcc: parseAddrs(bcc.input.value),
      subject: subject.value,
      attachments: c.attachments.filter((a) => a.blobId).map((a) => ({ blobId: a.blobId, type: a.type, name: a.name, ...(a.cid ? { cid: a.cid, disposition: a.disposition } : {}) })),
      bodyValues: {},
    };
    if (ident && ident.replyTo && ident.replyTo.length) e.replyTo = ident.replyTo;
    if (c.inReplyTo && c.inReplyTo.length) e.inReplyTo = c.inReplyTo;
    if (c.references && c.references.length) e.references = c.references;
    if (c.rich) {
      const html = sanitize(editor.innerHTML).html;
      e.bodyValues.t = { value: htmlToText(html) };
      e.bodyValues.h = { value: `<!doctype html><html><body>${html}</body></html>` };
      e.textBody = [{ partId: 't', type: 'text/plain' }];
      e.htmlBody = [{ partId: 'h', type: 'text/html' }];
    } else {
      e.bodyValues.t = { value: draft ? textarea.value : textarea.value.replace(/^(\s*\n)+/, '') };
      e.textBody = [{ partId: 't', type: 'text/plain' }];
    }
    if (!e.attachments.length) delete e.attachments;
    for (const k of ['to', 'cc', 'bcc']) if (!e[k].length) delete e[k];
    return e;
  }

  /** Saves the draft (replacing the previous one); resolves to its id. */
  async function save(final = false) {
    if (c.saving) await c.saving.catch(() => {});
    c.saving = (async () => {
      const old = c.draftId;
      const r = await call('Email/set', { create: { d: email(!final) }, destroy: old ? [old] : [] });
      if (!r.created || !r.created.d) {
        const err = Object.values(r.notCreated || {})[0];
        throw new Error(err ? err.description || err.type : 'not saved');
      }
      c.draftId = r.created.d.id;
      c.dirty = false;
      status.textContent = 'Draft saved';
      return c.draftId;
    })();
    try {
      return await c.saving;
    } finally {
      c.saving = null;
    }
  }
  const autosave = debounce(() => {
    if (c.dirty && !c.sent) save().catch((e) => (status.textContent = `Not saved: ${e.message}`));
  }, 2000);
  function changed() {
    c.dirty = true;
    status.textContent = '';
    autosave();
  }
  form.addEventListener('input', changed);
  editor.addEventListener('input', changed);

  c.close = (replacing) => {
    autosave.cancel();
    if (c.dirty && !c.sent) save().catch(() => {});
    box.remove();
    document.body.classList.remove('composing');
    if (current === c) current = null;
    void replacing;
    return true;
  };

  async function discard() {
    autosave.cancel();
    c.sent = true;
    box.remove();
    document.body.classList.remove('composing');
    current = null;
    if (c.saving) await c.saving.catch(() => {});
    if (c.draftId) await call('Email/set', { destroy: [c.draftId] }).catch(() => {});
    toast('Draft discarded');
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const rcpts = [...parseAddrs(to.input.value), ...parseAddrs(cc.input.value), ...parseAddrs(bcc.input.value)];
    if (!rcpts.length) {
      status.textContent = 'Add at least one recipient.';
      to.input.focus();
      return;
    }
    const bad = rcpts.find((a) => !validEmail(a.email));
    if (bad) {
      status.textContent = `Not an email address: ${bad.email}`;
      return;
    }
    if (c.uploads) {
      status.textContent = 'Wait for the attachments to upload.';
      return;
    }
    if (!subject.value.trim() && !confirm('Send without a subject?')) return;
    send.disabled = true;
    status.textContent = 'Saving…';
    autosave.cancel();
    let id;
    try {
      id = await save(true);
    } catch (e) {
      status.textContent = `Cannot send: ${e.message}`;
      send.disabled = false;
      return;
    }
    c.sent = true;
    box.remove();
    document.body.classList.remove('composing');
    current = null;
    const ident = state.identities.find((i) => i.id === fromSel.value) || state.identities[0];
    sendLater(id, ident, rcpts, d);
  });

  current = c;
  (to.input.value ? (c.rich ? editor : textarea) : to.input).focus();
  if (!to.input.value) to.input.focus();
  else if (!c.rich) {
    textarea.setSelectionRange(0, 0);
    textarea.focus();
  }
  return c;
}

/** Submits a saved draft after the undo window (or held by the server). */
function sendLater(draftId, ident, rcpts, d) {
  const drafts = roleId('drafts');
  const sent = roleId('sent');
  const onSuccess = { '#s': { [`mailboxIds/${drafts}`]: null, [`mailboxIds/${sent}`]: true, 'keywords/$draft': null } };
  const held = submissionExtension('FUTURERELEASE');
  const submission = { emailId: draftId, identityId: ident && ident.id };
  if (held) {
    submission.envelope = {
      mailFrom: { email: ident ? ident.email : jmap.username, parameters: { HOLDFOR: String(UNDO_SECONDS + 2) } },
      rcptTo: rcpts.map((a) => ({ email: a.email })),
    };
  }
  const submit = async () => {
    const rs = await api([['EmailSubmission/set', { create: { s: submission }, onSuccessUpdateEmail: onSuccess }]], { lenient: true });
    const r = rs[0];
    if (r.name === 'error') throw new Error(r.description || r.type);
    if (!r.created || !r.created.s) {
      const err = Object.values(r.notCreated || {})[0];
      throw new Error(err ? err.description || err.type : 'not sent');
    }
    return r.created.s.id;
  };
  const reopen = () => composeFromDraftId(draftId);
  if (held) {
    submit().then((subId) => {
      toast('Message sent.', {
        label: 'Undo',
        run: async () => {
          const r = await call('EmailSubmission/set', { update: { [subId]: { undoStatus: 'canceled' } } }).catch((e) => ({ notUpdated: { x: { description: e.message } } }));
          if (r.notUpdated) {
            toast('Too late: the message has gone.');
            return;
          }
          await call('Email/set', { update: { [draftId]: { [`mailboxIds/${sent}`]: null, [`mailboxIds/${drafts}`]: true, 'keywords/$draft': true } } }).catch(() => {});
          reopen();
        },
      }, UNDO_SECONDS * 1000);
      loadMailboxes().catch(() => {});
    }).catch((e) => {
      toast(`Not sent: ${e.message}. It is in Drafts.`);
    });
    return;
  }
  let cancelled = false;
  pending++;
  const timer = setTimeout(async () => {
    pending--;
    if (cancelled) return;
    try {
      await submit();
      toast('Message sent.');
      loadMailboxes().catch(() => {});
    } catch (e) {
      toast(`Not sent: ${e.message}. It is in Drafts.`, null, 10000);
    }
  }, UNDO_SECONDS * 1000);
  toast('Sending…', {
    label: 'Undo',
    run: () => {
      cancelled = true;
      clearTimeout(timer);
      pending--;
      reopen();
    },
  }, UNDO_SECONDS * 1000);
  void d;
}

async function composeFromDraftId(id) {
  const { BODY_PROPS } = await import('./thread.js');
  const r = await call('Email/get', { ids: [id], properties: BODY_PROPS, fetchHTMLBodyValues: true, fetchTextBodyValues: true });
  if (r.list[0]) composeFromDraft(r.list[0]);
}

export function composing() {
  return !!current;
}
