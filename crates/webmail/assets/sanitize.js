// An allow-list HTML sanitiser built on DOMParser (which never runs
// scripts): unknown elements are unwrapped, dangerous ones dropped with
// their content, attributes and URLs allow-listed, CSS stripped of script
// and of remote resources unless remote images are allowed. The result
// goes into a sandboxed iframe (no scripts) with its own CSP as a second
// line of defence.

const KEEP = new Set(('a abbr address article aside b bdi bdo big blockquote br caption center cite code col colgroup ' +
  'dd del details dfn div dl dt em figcaption figure font footer h1 h2 h3 h4 h5 h6 header hr i img ins kbd li main ' +
  'mark nav ol p pre q rp rt ruby s samp section small span strike strong sub summary sup table tbody td tfoot th ' +
  'thead time tr tt u ul var wbr').split(' '));
const DROP = new Set(('script noscript iframe frame frameset object embed applet svg math template link meta base ' +
  'title head style input textarea select option button audio video canvas source track param portal dialog form').split(' '));
const ATTRS = new Set(('align alt bgcolor border cellpadding cellspacing class color colspan dir face headers height ' +
  'hspace lang rowspan scope size span start summary title type valign vspace width datetime abbr').split(' '));

const REMOTE = /^(https?:)?\/\//i;

/** CSS with script hooks removed; url(remote) removed unless allowed. */
function cleanCss(css, opts, stats) {
  // No CSS escapes (they could spell url( or expression( past the checks
  // below), no comments, no image-set() (it fetches plain strings).
  css = css.replace(/\\/g, '').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(-webkit-)?image-set\s*\(/gi, 'x-blocked(');
  css = css.replace(/@import[^;]*;?/gi, '').replace(/@font-face\s*\{[^}]*\}/gi, '');
  css = css.replace(/expression\s*\(|javascript:|vbscript:|behavior\s*:|-moz-binding/gi, 'x-blocked:');
  css = css.replace(/url\s*\(\s*(['"]?)([^'")]*)\1\s*\)/gi, (m, q, u) => {
    u = u.trim();
    if (/^data:image\//i.test(u)) return m;
    if (/^cid:/i.test(u)) return opts.cid(u.slice(4)) ? `url("${opts.cid(u.slice(4))}")` : 'none';
    if (REMOTE.test(u)) {
      stats.remote++;
      return opts.allowRemote ? `url("${u.replace(/["\\]/g, '')}")` : 'none';
    }
    return 'none';
  });
  // Whatever still reads as a remote address (odd quoting, broken escapes) goes too.
  if (!opts.allowRemote) css = css.replace(/url\s*\(\s*['"]?\s*(https?:)?\/\/[^;}]*/gi, 'none').replace(/(https?:)?\/\/[^\s'")]*/gi, '');
  return css;
}

function cleanUrl(u, kind, opts, stats) {
  u = (u || '').trim();
  if (kind === 'href') {
    if (/^(https?:|mailto:|tel:)/i.test(u)) return u;
    if (u.startsWith('#')) return u;
    return null;
  }
  if (/^cid:/i.test(u)) return opts.cid(u.slice(4)) || null;
  if (/^data:image\/(png|gif|jpe?g|webp|bmp);/i.test(u)) return u;
  if (REMOTE.test(u)) {
    stats.remote++;
    return opts.allowRemote ? (u.startsWith('//') ? `https:${u}` : u) : undefined;
  }
  return null;
}

function walk(node, out, doc, opts, stats) {
  for (const child of [...node.childNodes]) {
    if (child.nodeType === 3) {
      out.append(doc.createTextNode(child.data));
      continue;
    }
    if (child.nodeType !== 1) continue;
    const tag = child.localName;
    if (tag === 'style') {
      stats.css.push(cleanCss(child.textContent, opts, stats));
      continue;
    }
    if (DROP.has(tag) || child.namespaceURI !== 'http://www.w3.org/1999/xhtml') continue;
    if (!KEEP.has(tag)) {
      walk(child, out, doc, opts, stats); // unwrap: keep the content
      continue;
    }
    const el = doc.createElement(tag);
    for (const { name, value } of [...child.attributes]) {
      const n = name.toLowerCase();
      if (ATTRS.has(n)) el.setAttribute(n, value);
      else if (n === 'style') el.setAttribute('style', cleanCss(value, opts, stats));
      else if (n === 'href' && tag === 'a') {
        const u = cleanUrl(value, 'href', opts, stats);
        if (u) el.setAttribute('href', u);
      } else if ((n === 'src' && tag === 'img') || n === 'background') {
        const u = cleanUrl(value, 'src', opts, stats);
        if (u) el.setAttribute(n, u);
        else if (u === undefined) el.setAttribute('data-blocked', '');
      }
    }
    if (tag === 'a') {
      el.setAttribute('target', '_blank');
      el.setAttribute('rel', 'noopener noreferrer');
    }
    out.append(el);
    walk(child, el, doc, opts, stats);
  }
}

/**
 * Sanitises an HTML mail body. opts: allowRemote (load remote images),
 * cid(contentId) -> URL or null. Returns {html (body markup), css, remote
 * (count of remote resources seen)}.
 */
export function sanitize(html, opts = {}) {
  opts = { allowRemote: false, cid: () => null, ...opts };
  // Handler attributes renamed first only to spare the console CSP
  // reports of the parser; the walk below is what removes them.
  const src = new DOMParser().parseFromString(html.replace(/(<[^>]*?[\s/])on([a-z]+\s*=)/gi, '$1data-x-on$2'), 'text/html');
  const doc = document.implementation.createHTMLDocument('');
  const stats = { remote: 0, css: [] };
  const root = doc.createElement('div');
  // Head styles are kept (cleaned); everything else of the head goes.
  for (const s of src.head ? src.head.querySelectorAll('style') : []) stats.css.push(cleanCss(s.textContent, opts, stats));
  walk(src.body || src.documentElement, root, doc, opts, stats);
  return { html: root.innerHTML, css: stats.css.join('\n').replace(/<\/?style/gi, ''), remote: stats.remote };
}

/** The iframe document for a sanitised body. */
export function frameDocument(clean, allowRemote) {
  const img = allowRemote ? "img-src data: blob: 'self' https: http:" : "img-src data: blob: 'self'";
  const csp = `default-src 'none'; ${img}; style-src 'unsafe-inline'`;
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${csp}">` +
    `<style>html,body{margin:0;padding:0;background:#fff;color:#111}body{font:15px/1.5 system-ui,sans-serif;padding:4px 2px;overflow-wrap:anywhere}` +
    `img{max-width:100%;height:auto}table{max-width:100%}pre{white-space:pre-wrap}blockquote{margin:0 0 0 .8em;padding-left:.8em;border-left:3px solid #ccc}</style>` +
    `<style>${clean.css}</style></head><body>${clean.html}</body></html>`;
}

/** A search snippet with only <mark> kept; everything else as text. */
export function snippetNodes(html) {
  const frag = document.createDocumentFragment();
  const src = new DOMParser().parseFromString(`<body>${html || ''}</body>`, 'text/html');
  const visit = (node, out) => {
    for (const c of node.childNodes) {
      if (c.nodeType === 3) out.append(c.data);
      else if (c.nodeType === 1) {
        if (c.localName === 'mark') {
          const m = document.createElement('mark');
          m.textContent = c.textContent;
          out.append(m);
        } else visit(c, out);
      }
    }
  };
  visit(src.body, frag);
  return frag;
}

/** Plain text of an HTML fragment (for the text alternative of rich mail). */
export function htmlToText(html) {
  const src = new DOMParser().parseFromString(html, 'text/html');
  const lines = [];
  const block = /^(p|div|br|li|h[1-6]|tr|blockquote|pre|ul|ol|table)$/;
  let cur = '';
  const visit = (n, quote) => {
    for (const c of n.childNodes) {
      if (c.nodeType === 3) cur += c.data.replace(/\s+/g, ' ');
      else if (c.nodeType === 1) {
        const t = c.localName;
        if (t === 'br') {
          lines.push(quote + cur);
          cur = '';
          continue;
        }
        const isBlock = block.test(t);
        if (isBlock && cur) {
          lines.push(quote + cur);
          cur = '';
        }
        if (t === 'li') cur += '- ';
        if (t === 'a' && c.getAttribute('href') && c.textContent !== c.getAttribute('href')) {
          visit(c, quote);
          cur += ` <${c.getAttribute('href')}>`;
          continue;
        }
        visit(c, t === 'blockquote' ? quote + '> ' : quote);
        if (isBlock && cur) {
          lines.push(quote + cur);
          cur = '';
        }
      }
    }
  };
  visit(src.body, '');
  if (cur) lines.push(cur);
  return lines.map((l) => l.replace(/\s+$/, '')).join('\n').replace(/\n{3,}/g, '\n\n').trim() + '\n';
}
