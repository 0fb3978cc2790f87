// The search box: `from:`, `to:`, `cc:`, `subject:`, `has:attachment`,
// `is:unread|flagged`, `in:folder`, `before:`/`after:` (YYYY-MM-DD), quoted
// phrases, and plain words (full text) -> a JMAP Email/query filter.
import { state, mailboxPath } from './state.js';

function tokens(q) {
  const out = [];
  const re = /(-?)(\w+:)?("([^"]*)"|\S+)/g;
  let m;
  while ((m = re.exec(q))) {
    const value = m[4] !== undefined ? m[4] : m[3];
    out.push({ neg: !!m[1], key: m[2] ? m[2].slice(0, -1).toLowerCase() : null, value });
  }
  return out;
}

function day(s, end) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return null;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  if (end) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

export function parseSearch(q) {
  const conds = [];
  const words = [];
  for (const t of tokens(q.trim())) {
    let c = null;
    switch (t.key) {
      case 'from': case 'to': case 'cc': case 'bcc': case 'subject': case 'body':
        c = { [t.key]: t.value };
        break;
      case 'has':
        if (/^attachments?$/i.test(t.value)) c = { hasAttachment: true };
        break;
      case 'is':
        if (t.value === 'unread') c = { notKeyword: '$seen' };
        else if (t.value === 'read') c = { hasKeyword: '$seen' };
        else if (t.value === 'flagged' || t.value === 'starred') c = { hasKeyword: '$flagged' };
        break;
      case 'before':
        c = day(t.value) && { before: day(t.value) };
        break;
      case 'after':
        c = day(t.value) && { after: day(t.value, true) };
        break;
      case 'in': {
        const v = t.value.toLowerCase();
        const m = state.mailboxes.find((x) => x.role === v || x.name.toLowerCase() === v || mailboxPath(x).toLowerCase() === v);
        if (m) c = { inMailbox: m.id };
        break;
      }
      default:
        words.push((t.key ? t.key + ':' : '') + t.value);
        continue;
    }
    if (!c) {
      words.push(`${t.key}:${t.value}`);
      continue;
    }
    conds.push(t.neg ? { operator: 'NOT', conditions: [c] } : c);
  }
  if (words.length) conds.push({ text: words.join(' ') });
  if (!conds.length) return null;
  return conds.length === 1 ? conds[0] : { operator: 'AND', conditions: conds };
}
