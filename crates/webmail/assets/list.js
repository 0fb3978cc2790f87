// The message list: a virtual scroller over Email/query windows. Only the
// windows near the visible rows are fetched (PAGE per request, at most
// MAX_PAGES kept) and only visible rows are in the DOM, so a mailbox of any
// size scrolls in constant memory.
import { api, ref } from './jmap.js';
import { h, clear, shortDate, addrName, $ } from './util.js';
import { iconEl } from './icons.js';
import { snippetNodes } from './sanitize.js';
import { state, myAddresses } from './state.js';

const PAGE = 50;
const MAX_PAGES = 12;
const OVERSCAN = 6;
export const LIST_PROPS = ['threadId', 'mailboxIds', 'keywords', 'from', 'to', 'subject', 'preview', 'receivedAt', 'hasAttachment'];

function rowHeight() {
  return parseInt(getComputedStyle(document.documentElement).getPropertyValue('--row'), 10) || 68;
}

export class MailList {
  constructor(root, { onOpen, onSelection, hrefFor }) {
    this.root = root;
    this.onOpen = onOpen;
    this.onSelection = onSelection;
    this.hrefFor = hrefFor;
    this.scroller = h('div', { class: 'list-scroll', tabindex: '-1' });
    this.inner = h('ul', { class: 'list-inner', role: 'list', 'aria-label': 'Messages' });
    this.empty = h('p', { class: 'empty', hidden: true }, 'No messages here.');
    this.scroller.append(this.inner, this.empty);
    root.append(this.scroller);
    this.rows = new Map();
    this.selected = new Map(); // emailId -> {emailId, threadId}
    this.cursor = -1;
    this.lastClicked = -1;
    this.rowH = rowHeight();
    this.gen = 0;
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => {
      const r = rowHeight();
      if (r !== this.rowH) {
        this.rowH = r;
        if (this.total != null) this.setTotal(this.total);
        this.render(true);
      } else this.schedule();
    }).observe(this.scroller);
    this.reset({ filter: null });
  }

  /** A new query: filter, collapse threads, search snippets. */
  reset({ filter, collapse = state.threads, search = false }) {
    this.gen++;
    this.filter = filter;
    this.collapse = collapse;
    this.search = search;
    this.pages = new Map();
    this.loading = new Map();
    this.total = null;
    this.cursor = -1;
    this.selected.clear();
    this.onSelection(this.selected);
    this.scroller.scrollTop = 0;
    this.inner.style.height = '0px';
    for (const el of this.rows.values()) el.remove();
    this.rows.clear();
    this.empty.hidden = true;
    if (filter !== null) return this.load(0);
  }

  query(position) {
    return {
      filter: this.filter,
      sort: [{ property: 'receivedAt', isAscending: false }],
      collapseThreads: this.collapse,
      position,
      limit: PAGE,
      calculateTotal: true,
    };
  }

  async fetchPage(p) {
    const calls = [
      ['Email/query', this.query(p * PAGE)],
      ['Email/get', { '#ids': ref(0, 'Email/query', '/ids'), properties: LIST_PROPS }],
    ];
    if (this.collapse) {
      calls.push(['Thread/get', { '#ids': ref(1, 'Email/get', '/list/*/threadId') }]);
      calls.push(['Email/get', { '#ids': ref(2, 'Thread/get', '/list/*/emailIds'), properties: ['keywords', 'mailboxIds', 'from'] }]);
    }
    if (this.search) calls.push(['SearchSnippet/get', { filter: this.filter, '#emailIds': ref(0, 'Email/query', '/ids') }]);
    const rs = await api(calls, { lenient: true });
    const [q, g] = rs;
    if (q.name === 'error') throw new Error(q.description || q.type);
    const byId = new Map((g.list || []).map((e) => [e.id, e]));
    const threads = new Map();
    const members = new Map();
    if (this.collapse && rs[2].name !== 'error') {
      for (const t of rs[2].list) threads.set(t.id, t.emailIds);
      if (rs[3].name !== 'error') for (const e of rs[3].list) members.set(e.id, e);
    }
    const snippets = new Map();
    const sn = rs.find((r) => r.name === 'SearchSnippet/get');
    if (sn) for (const s of sn.list || []) snippets.set(s.emailId, s);
    const me = myAddresses();
    const items = q.ids.map((id) => {
      const e = byId.get(id) || { id, keywords: {}, mailboxIds: {} };
      const ids = threads.get(e.threadId) || [id];
      const mem = ids.map((x) => members.get(x)).filter(Boolean);
      const unread = mem.length ? mem.some((m) => !m.keywords.$seen && !m.keywords.$draft) : !e.keywords.$seen;
      const flagged = mem.length ? mem.some((m) => m.keywords.$flagged) : !!e.keywords.$flagged;
      const senders = [...new Set(mem.map((m) => {
        const f = (m.from || [])[0];
        return f && me.has(f.email.toLowerCase()) ? 'me' : addrName(f);
      }).filter(Boolean))];
      return {
        emailId: id,
        threadId: e.threadId,
        from: e.from,
        to: e.to,
        senders,
        subject: e.subject,
        preview: e.preview,
        receivedAt: e.receivedAt,
        hasAttachment: e.hasAttachment,
        unread,
        flagged,
        draft: !!(e.keywords && e.keywords.$draft),
        count: ids.length,
        snippet: snippets.get(id),
      };
    });
    return { items, total: q.total, queryState: q.queryState };
  }

  async load(p, gen = this.gen) {
    if (this.pages.has(p) || this.loading.has(p)) return this.loading.get(p);
    const promise = this.fetchPage(p)
      .then((page) => {
        if (gen !== this.gen) return;
        this.pages.set(p, page);
        this.setTotal(page.total);
        this.evict(p);
        this.render();
      })
      .catch((e) => {
        if (gen === this.gen) {
          this.empty.hidden = false;
          this.empty.textContent = e.type === 'offline' ? 'Offline: this list was not saved.' : `Cannot load: ${e.message}`;
        }
      })
      .finally(() => this.loading.delete(p));
    this.loading.set(p, promise);
    return promise;
  }

  /** Re-runs the queries of the visible windows (live updates), keeping the scroll. */
  async refresh() {
    if (this.filter === null) return;
    const gen = this.gen;
    const wanted = this.visiblePages();
    if (!wanted.length) wanted.push(0);
    try {
      const fresh = await Promise.all(wanted.map((p) => this.fetchPage(p)));
      if (gen !== this.gen) return;
      this.pages = new Map(wanted.map((p, i) => [p, fresh[i]]));
      this.setTotal(fresh[0].total);
      // Selection keeps only what is still listed.
      const listed = new Set(fresh.flatMap((f) => f.items.map((i) => i.emailId)));
      for (const id of [...this.selected.keys()]) if (!listed.has(id)) this.selected.delete(id);
      this.onSelection(this.selected);
      this.render(true);
    } catch {
      /* offline: keep what is shown */
    }
  }

  setTotal(t) {
    if (t == null) return;
    this.total = t;
    this.inner.style.height = `${t * this.rowH}px`;
    this.empty.hidden = t > 0;
    if (!t) this.empty.textContent = this.search ? 'No results.' : 'No messages here.';
    if (this.cursor >= t) this.cursor = t - 1;
  }

  evict(keep) {
    if (this.pages.size <= MAX_PAGES) return;
    const far = [...this.pages.keys()].sort((a, b) => Math.abs(b - keep) - Math.abs(a - keep));
    for (const p of far.slice(0, this.pages.size - MAX_PAGES)) this.pages.delete(p);
  }

  range() {
    const top = this.scroller.scrollTop;
    const hgt = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowH) - OVERSCAN);
    const last = Math.min((this.total ?? 0) - 1, Math.ceil((top + hgt) / this.rowH) + OVERSCAN);
    return [first, last];
  }

  visiblePages() {
    const [a, b] = this.range();
    const out = [];
    for (let p = Math.floor(a / PAGE); p <= Math.floor(Math.max(a, b) / PAGE); p++) out.push(p);
    return out;
  }

  item(pos) {
    const page = this.pages.get(Math.floor(pos / PAGE));
    return page ? page.items[pos % PAGE] : null;
  }

  schedule() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.render();
    });
  }

  render(force = false) {
    if (this.total == null) return;
    const [a, b] = this.range();
    for (const p of this.visiblePages()) if (!this.pages.has(p)) this.load(p);
    for (const [pos, el] of this.rows) {
      if (pos < a || pos > b || force) {
        el.remove();
        this.rows.delete(pos);
      }
    }
    for (let pos = a; pos <= b; pos++) {
      const it = this.item(pos);
      const el = this.rows.get(pos);
      if (el && el.dataset.id === (it ? it.emailId : '')) continue;
      if (el) el.remove();
      const row = this.row(pos, it);
      this.rows.set(pos, row);
      this.inner.append(row);
    }
  }

  row(pos, it) {
    const li = h('li', { class: 'row', style: `top:${pos * this.rowH}px`, dataset: { pos, id: it ? it.emailId : '' } });
    if (!it) {
      li.classList.add('placeholder');
      li.append(h('div', { class: 'row-line skeleton' }), h('div', { class: 'row-line skeleton short' }));
      return li;
    }
    if (it.unread) li.classList.add('unread');
    if (this.selected.has(it.emailId)) li.classList.add('selected');
    if (pos === this.cursor) li.classList.add('cursor');
    if (state.route.emailId === it.emailId) li.classList.add('open');
    li.draggable = true;
    const who = state.route.mailboxId && (state.byId.get(state.route.mailboxId) || {}).role === 'sent'
      ? 'To: ' + (it.to || []).map(addrName).join(', ')
      : this.collapse && it.senders.length > 1
        ? it.senders.slice(0, 3).join(', ')
        : addrName((it.from || [])[0]) || '(no sender)';
    const check = h('input', { type: 'checkbox', class: 'check', 'aria-label': `Select ${it.subject || 'message'}`, checked: this.selected.has(it.emailId) });
    check.addEventListener('click', (e) => {
      e.stopPropagation();
      this.toggle(pos, e.shiftKey, check.checked);
    });
    const subject = h('span', { class: 'subject' }, it.subject || '(no subject)');
    const preview = h('span', { class: 'preview' });
    if (it.snippet && (it.snippet.subject || it.snippet.preview)) {
      if (it.snippet.subject) subject.replaceChildren(snippetNodes(it.snippet.subject));
      preview.append(it.snippet.preview ? snippetNodes(it.snippet.preview) : it.preview || '');
    } else preview.textContent = it.preview || '';
    const link = h('a', { class: 'row-link', href: this.hrefFor(it), draggable: false },
      h('span', { class: 'from' }, it.draft ? h('span', { class: 'draft-tag' }, 'Draft ') : null, who,
        this.collapse && it.count > 1 ? h('span', { class: 'count' }, ` ${it.count}`) : null),
      h('span', { class: 'meta' },
        it.hasAttachment ? h('span', { class: 'att', title: 'Has attachment', 'aria-label': 'Has attachment' }, iconEl('clip')) : null,
        h('time', { datetime: it.receivedAt }, shortDate(it.receivedAt))),
      h('span', { class: 'line2' }, subject, h('span', { class: 'sep' }, ' — '), preview));
    link.addEventListener('click', (e) => {
      if (e.shiftKey || e.ctrlKey || e.metaKey) {
        if (e.shiftKey) {
          e.preventDefault();
          this.toggle(pos, true, !this.selected.has(it.emailId));
        }
        return;
      }
      this.cursor = pos;
    });
    const star = h('button', {
      class: 'star' + (it.flagged ? ' on' : ''),
      'aria-label': it.flagged ? 'Unflag' : 'Flag',
      'aria-pressed': String(!!it.flagged),
      title: it.flagged ? 'Flagged' : 'Flag',
    }, iconEl('star'));
    star.addEventListener('click', (e) => {
      e.stopPropagation();
      this.onOpen({ action: 'flag', items: [it], on: !it.flagged });
    });
    li.addEventListener('dragstart', (e) => {
      const items = this.selected.has(it.emailId) ? [...this.selected.values()] : [{ emailId: it.emailId, threadId: it.threadId }];
      e.dataTransfer.setData('application/x-letterbox-items', JSON.stringify(items));
      e.dataTransfer.effectAllowed = 'move';
    });
    if (it.unread) li.append(h('span', { class: 'dot', 'aria-label': 'Unread' }));
    li.append(check, link, star);
    return li;
  }

  toggle(pos, range, on) {
    const from = range && this.lastClicked >= 0 ? Math.min(this.lastClicked, pos) : pos;
    const to = range && this.lastClicked >= 0 ? Math.max(this.lastClicked, pos) : pos;
    for (let p = from; p <= to; p++) {
      const it = this.item(p);
      if (!it) continue;
      if (on) this.selected.set(it.emailId, { emailId: it.emailId, threadId: it.threadId });
      else this.selected.delete(it.emailId);
    }
    this.lastClicked = pos;
    this.onSelection(this.selected);
    this.render(true);
  }

  selectAll(on) {
    if (!on) this.selected.clear();
    else for (const page of this.pages.values()) for (const it of page.items) this.selected.set(it.emailId, { emailId: it.emailId, threadId: it.threadId });
    this.onSelection(this.selected);
    this.render(true);
  }

  /** The items actions apply to: the selection, else the cursor row. */
  targets() {
    if (this.selected.size) return [...this.selected.values()];
    const it = this.cursor >= 0 ? this.item(this.cursor) : null;
    return it ? [{ emailId: it.emailId, threadId: it.threadId }] : [];
  }

  moveCursor(d) {
    if (!this.total) return null;
    this.cursor = Math.max(0, Math.min(this.total - 1, this.cursor + d));
    const top = this.cursor * this.rowH;
    if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
    else if (top + this.rowH > this.scroller.scrollTop + this.scroller.clientHeight) this.scroller.scrollTop = top + this.rowH - this.scroller.clientHeight;
    this.render(true);
    const row = this.rows.get(this.cursor);
    if (row) $('.row-link', row)?.focus({ preventScroll: true });
    return this.item(this.cursor);
  }

  cursorItem() {
    return this.cursor >= 0 ? this.item(this.cursor) : null;
  }

  /** The open conversation was marked read: show it so before the server says. */
  markRead(threadId, ids) {
    const set = new Set(ids);
    for (const page of this.pages.values()) {
      for (const it of page.items) if (it.threadId === threadId || set.has(it.emailId)) it.unread = false;
    }
    this.render(true);
  }

  /** Puts the cursor on an email if it is loaded. */
  setCursorTo(emailId) {
    for (const [p, page] of this.pages) {
      const i = page.items.findIndex((x) => x.emailId === emailId);
      if (i >= 0) {
        this.cursor = p * PAGE + i;
        this.render(true);
        return;
      }
    }
  }

  /** Neighbour of the open email (for j/k while reading). */
  neighbour(emailId, d) {
    this.setCursorTo(emailId);
    if (this.cursor < 0) return null;
    const pos = this.cursor + d;
    if (pos < 0 || pos >= this.total) return null;
    const it = this.item(pos);
    if (!it) this.load(Math.floor(pos / PAGE));
    return it;
  }
}

export function clearList(el) {
  clear(el);
}
