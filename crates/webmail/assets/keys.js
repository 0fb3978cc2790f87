// Gmail-style keyboard shortcuts (not while typing) and the ? overlay.
import { h } from './util.js';
import { openCompose } from './compose.js';
import { state } from './state.js';
import * as act from './actions.js';

export const SHORTCUTS = [
  ['j / k', 'Next / previous conversation'],
  ['o or Enter', 'Open conversation'],
  ['u', 'Back to the list'],
  ['e', 'Archive'],
  ['#', 'Delete'],
  ['!', 'Spam'],
  ['r', 'Reply'],
  ['a', 'Reply all'],
  ['f', 'Forward'],
  ['c', 'Compose'],
  ['/', 'Search'],
  ['s', 'Flag / unflag'],
  ['x', 'Select conversation'],
  ['Shift+I', 'Mark as read'],
  ['Shift+U', 'Mark as unread'],
  ['?', 'This help'],
  ['Esc', 'Close'],
];

let helpDlg = null;
export function showHelp() {
  if (helpDlg) return;
  const close = () => {
    helpDlg.close();
    helpDlg.remove();
    helpDlg = null;
  };
  helpDlg = h('dialog', { class: 'help', 'aria-labelledby': 'help-title' },
    h('h2', { id: 'help-title' }, 'Keyboard shortcuts'),
    h('dl', { class: 'keys' }, SHORTCUTS.map(([k, d]) => [h('dt', null, h('kbd', null, k)), h('dd', null, d)])),
    h('button', { class: 'btn primary', onclick: close }, 'Close'));
  helpDlg.addEventListener('cancel', (e) => {
    e.preventDefault();
    close();
  });
  document.body.append(helpDlg);
  helpDlg.showModal();
}

function typing(t) {
  return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
}

export function bindKeys(app) {
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target) || e.defaultPrevented) return;
    if (document.querySelector('dialog[open]') && e.key !== '?') return;
    if (document.body.classList.contains('composing') && e.key !== '?') return;
    const { ui } = app;
    const list = ui.list;
    const reading = !!state.route.emailId;
    const targets = () => (reading ? app.threadItems() : list.targets());
    const after = reading ? app.afterThreadAction : null;
    const open = (it) => it && (location.hash = `${app.listHref()}/${it.emailId}`);
    const lastEmail = () => {
      const l = app.openThread();
      return l[l.length - 1];
    };
    let handled = true;
    switch (e.key) {
      case 'j':
        if (reading) open(list.neighbour(state.route.emailId, 1));
        else list.moveCursor(1);
        break;
      case 'k':
        if (reading) open(list.neighbour(state.route.emailId, -1));
        else list.moveCursor(-1);
        break;
      case 'o':
      case 'Enter':
        if (reading) return;
        if (e.key === 'Enter' && e.target.closest && e.target.closest('a,button')) return;
        open(list.cursorItem());
        break;
      case 'u':
        if (reading || state.route.view === 'settings') location.hash = app.listHref();
        break;
      case 'e':
        if (targets().length) app.doAction('Archived', () => act.archive(targets()), after);
        break;
      case '#':
        if (targets().length) app.doAction('Deleted', () => act.remove(targets()), after);
        break;
      case '!':
        if (targets().length) app.doAction('Marked as spam', () => act.spam(targets()), after);
        break;
      case 's': {
        const t = targets();
        if (!t.length) break;
        const it = reading ? null : list.cursorItem();
        const on = reading ? !app.openThread().some((x) => x.keywords.$flagged) : !(it && it.flagged);
        app.doAction(on ? 'Flagged' : 'Unflagged', () => act.setKeyword(t, '$flagged', on));
        break;
      }
      case 'x': {
        const it = list.cursorItem();
        if (it) list.toggle(list.cursor, false, !list.selected.has(it.emailId));
        break;
      }
      case 'I':
        if (targets().length) app.doAction('Marked as read', () => act.setKeyword(targets(), '$seen', true));
        break;
      case 'U':
        if (targets().length) app.doAction('Marked as unread', () => act.setKeyword(targets(), '$seen', false), reading ? () => (location.hash = app.listHref()) : null);
        break;
      case 'r':
      case 'a':
      case 'f':
        if (!reading || !lastEmail()) return;
        openCompose({ mode: e.key === 'r' ? 'reply' : e.key === 'a' ? 'replyAll' : 'forward', email: lastEmail() });
        break;
      case 'c':
        openCompose({});
        break;
      case '/':
        ui.search.focus();
        ui.search.select();
        break;
      case '?':
        showHelp();
        break;
      case 'Escape':
        document.body.classList.remove('nav-open');
        break;
      default:
        handled = false;
    }
    if (handled) e.preventDefault();
  });
}
