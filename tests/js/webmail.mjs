// Drives the Letterbox webmail in Chromium (playwright-core) for
// tests/test_webmail.py. Every request off loopback is refused (a dead
// proxy, and a route that aborts and records it). Steps are logged on
// stderr; a failing step says which. Python is asked to act mid-test by
// lines on stdout ("deliver", "push-verification", "push-verified?") and
// answers on stdin. The last stdout line is a JSON summary.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const { BASE, USER, PASS, ATTACKER, SHOTS, DOWNLOADS } = process.env;
const out = { offHost: [], csrf: {} };
const offHost = [];
let allowedFrom = Infinity;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const ask = async (what) => {
  process.stdout.write(what + '\n');
  const { value } = await lines.next();
  return value;
};
let current = 'start';
const log = (s) => process.stderr.write(`webmail: ${s}\n`);
async function step(name, f) {
  current = name;
  const t = Date.now();
  await f();
  log(`ok ${name} (${Date.now() - t} ms)`);
}
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--proxy-server=http://127.0.0.1:9', '--proxy-bypass-list=127.0.0.1', '--disable-features=HttpsUpgrades'],
  downloadsPath: DOWNLOADS,
});

async function newContext(opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true, ...opts });
  await ctx.grantPermissions(['notifications'], { origin: BASE });
  await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === '127.0.0.1') return route.continue();
    offHost.push(u.href);
    return route.abort('blockedbyclient');
  });
  return ctx;
}

const pageErrors = [];
function watch(page) {
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && !/status of 40[13]/.test(m.text()) && log(`console: ${m.text()}`));
}

const row = (page, subject) => page.locator('.row', { has: page.locator('.subject', { hasText: subject }) });
const toast = (page, text) => page.locator('#toast', { hasText: text }).waitFor({ timeout: 20000 });

async function signIn(page) {
  await page.fill('#login-user', USER);
  await page.fill('#login-pass', PASS);
  await page.click('.login button[type=submit]');
  await page.locator('body[data-ready="1"]').waitFor();
}

try {
  const ctx = await newContext();
  const page = await ctx.newPage();
  watch(page);

  await step('wrong password shows the server error', async () => {
    await page.goto(BASE + '/');
    await page.fill('#login-user', USER);
    await page.fill('#login-pass', 'wrong');
    await page.click('.login button[type=submit]');
    const err = page.locator('.login .error');
    await err.waitFor();
    check(/wrong email address or password/i.test(await err.textContent()), 'the 401 text is shown');
    await page.screenshot({ path: join(SHOTS, 'desktop-login.png') });
  });

  await step('sign in shows folders and the inbox', async () => {
    await signIn(page);
    await page.locator('.folder[data-role="inbox"]').waitFor();
    await row(page, 'Lunch on Friday').waitFor();
    const badge = await page.locator('.folder[data-role="inbox"] .badge').textContent();
    check(Number(badge) >= 40, `inbox unread count ${badge}`);
    const rows = await page.locator('.row').count();
    check(rows < 40, `only visible rows are in the DOM (${rows})`);
  });

  await step('a long mailbox scrolls by windows', async () => {
    await page.locator('.list-scroll').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await row(page, 'Filler 00').waitFor();
    await page.locator('.list-scroll').evaluate((el) => (el.scrollTop = 0));
    await row(page, 'Lunch on Friday').waitFor();
  });

  await step('a big mailbox scrolls in windows with a bounded DOM', async () => {
    const bulk = Number(process.env.BULK);
    const c2 = await newContext();
    const p2 = await c2.newPage();
    watch(p2);
    const windows = [];
    p2.on('request', (r) => {
      if (r.url().endsWith('/jmap/api') && r.method() === 'POST') {
        for (const [name, args] of JSON.parse(r.postData()).methodCalls) if (name === 'Email/query') windows.push(args.position);
      }
    });
    await p2.goto(BASE + '/');
    await p2.fill('#login-user', 'carol@example.test');
    await p2.fill('#login-pass', 'pw-carol');
    await p2.click('.login button[type=submit]');
    await row(p2, `Bulk ${String(bulk - 1).padStart(4, '0')}`).waitFor();
    const scroller = p2.locator('.list-scroll');
    const height = await scroller.evaluate((el) => el.scrollHeight);
    const rowH = await p2.locator('.row').first().evaluate((el) => el.offsetHeight);
    check(height >= bulk * (rowH - 1), `the list is as tall as ${bulk} rows (${height})`);
    const mid = Math.floor(bulk / 2);
    await scroller.evaluate((el, y) => (el.scrollTop = y), mid * rowH);
    await row(p2, `Bulk ${String(bulk - 1 - mid).padStart(4, '0')}`).waitFor();
    await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await row(p2, 'Bulk 0000').waitFor();
    const rows = await p2.locator('.row').count();
    check(rows < 40, `DOM rows stay bounded (${rows})`);
    const distinct = new Set(windows);
    const near = (p) => [0, mid, bulk].some((v) => Math.abs(p - v) <= 100);
    check(distinct.size <= 6 && [...distinct].every(near), `only the visited windows were queried: ${[...distinct]}`);
    await c2.close();
  });

  await step('read a thread', async () => {
    await row(page, 'Project plan').locator('.row-link').click();
    await page.locator('.message').nth(1).waitFor();
    check((await page.locator('.message').count()) === 2, 'both emails of the thread');
    check(/Looks good/.test(await page.locator('.message.open .text-body').last().textContent()), 'plain text body');
    await page.screenshot({ path: join(SHOTS, 'desktop-thread.png') });
  });

  await step('hostile HTML runs no script and fetches nothing remote', async () => {
    await row(page, 'Weekly newsletter').locator('.row-link').click();
    const frame = page.locator('iframe.mail-frame');
    await frame.waitFor();
    check((await frame.getAttribute('sandbox')) === 'allow-same-origin allow-popups allow-popups-to-escape-sandbox', 'sandbox without scripts');
    const f = page.frameLocator('iframe.mail-frame');
    await f.locator('text=subscriber').waitFor();
    const inside = await frame.evaluate((el) => {
      const d = el.contentDocument;
      return {
        csp: d.querySelector('meta[http-equiv="Content-Security-Policy"]')?.content,
        dangerous: d.querySelectorAll('script, svg, iframe, form, object, input, [onerror], [onclick]').length,
        jsHref: [...d.querySelectorAll('[href]')].filter((a) => !/^(https?:|mailto:|tel:|#)/i.test(a.getAttribute('href'))).length,
        deal: (() => {
          const a = [...d.querySelectorAll('a')].find((x) => x.textContent === 'Deal');
          return a && [a.getAttribute('href'), a.target, a.rel];
        })(),
        remoteSrc: [...d.querySelectorAll('[src], [background]')].filter((i) => /198\.51/.test(i.getAttribute('src') || i.getAttribute('background') || '')).length,
        css: [...d.querySelectorAll('style')].map((s) => s.textContent).join('') + [...d.querySelectorAll('[style]')].map((e) => e.getAttribute('style')).join(''),
      };
    });
    check(inside.csp && inside.csp.includes("default-src 'none'") && !inside.csp.includes('http:'), `frame CSP ${inside.csp}`);
    check(inside.dangerous === 0, 'no script, svg, iframe, form or handlers in the frame');
    check(inside.jsHref === 0, 'javascript: links removed');
    check(JSON.stringify(inside.deal) === JSON.stringify(['https://example.org/deal', '_blank', 'noopener noreferrer']), `links open apart: ${inside.deal}`);
    check(inside.remoteSrc === 0 && !/198\.51|expression/.test(inside.css), 'remote images and CSS expressions dropped');
    await page.locator('.images-bar').waitFor();
    check(!offHost.some((u) => u.includes('198.51.100.7')), 'nothing remote requested before Load images');
    const pixel = page.waitForRequest((r) => r.url() === 'http://198.51.100.7/pixel.gif', { timeout: 10000 });
    allowedFrom = offHost.length; // from here the user allowed this mail's images
    await page.click('.images-bar button:text("Load images")');
    await pixel;
    const pwned = await page.evaluate(() => [window.PWNED, document.title]);
    check(pwned[0] === undefined && pwned[1] !== 'PWNED', `no payload ran: ${pwned}`);
  });

  await step('download an attachment', async () => {
    await row(page, 'Lunch on Friday').locator('.row-link').click();
    const link = page.locator('.attachment a', { hasText: 'Download' });
    await link.waitFor();
    check(/notes\.txt/.test(await page.locator('.attachment .att-name').textContent()), 'attachment name');
    const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
    check(dl.suggestedFilename() === 'notes.txt', `file name ${dl.suggestedFilename()}`);
    const bytes = readFileSync(await dl.path()).toString();
    check(bytes === 'Bring the maps.\n'.repeat(3), `downloaded bytes: ${JSON.stringify(bytes)}`);
    const r = await ctx.request.get(dl.url());
    check(/^attachment;/.test(r.headers()['content-disposition'] || ''), `Content-Disposition ${r.headers()['content-disposition']}`);
  });

  await step('forward inline keeps the attachments', async () => {
    await page.locator('.message.open .msg-actions > button', { hasText: /^Forward$/ }).click();
    check((await page.inputValue('#c-subject')) === 'Fwd: Lunch on Friday', 'Fwd: subject');
    check((await page.inputValue('#c-body')).includes('---------- Forwarded message ----------'), 'forward header');
    await page.locator('.c-att', { hasText: 'notes.txt' }).waitFor();
    await page.fill('#c-to', 'bob@example.test');
    await page.click('.compose button[type=submit]');
    await toast(page, 'Message sent');
  });

  await step('reply all leaves me out', async () => {
    await row(page, 'Photo of the day').locator('.row-link').click();
    await page.locator('.message.open .msg-actions button', { hasText: 'Reply all' }).click();
    const to = await page.inputValue('#c-to');
    check(to.includes('carol@example.test') && !to.includes('alice@'), `reply-all To: ${to}`);
    check(!(await page.inputValue('#c-cc')).includes('alice@'), 'not copied to myself');
    check((await page.inputValue('#c-subject')) === 'Re: Photo of the day', 'Re: subject');
    await page.click('.compose button:text("Discard")');
    await page.locator('.compose').waitFor({ state: 'detached' });
  });

  await step('compose with an attachment and send', async () => {
    await page.click('.compose-btn');
    await page.fill('#c-to', 'bob@example.test');
    await page.fill('#c-subject', 'Webmail hello');
    await page.fill('#c-body', 'Sent from the browser test.\n');
    await page.setInputFiles('#c-file', { name: 'report.txt', mimeType: 'text/plain', buffer: Buffer.from('Quarterly numbers\n'.repeat(20)) });
    await page.locator('.c-att', { hasText: 'report.txt' }).waitFor();
    // Dropped onto the editor: uploaded too, then removed again.
    await page.locator('.compose-wrap').evaluate((box) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
      for (const type of ['dragover', 'drop']) box.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    const dropped = page.locator('.c-att', { hasText: 'dropped.txt' });
    await dropped.waitFor();
    await dropped.locator('progress').waitFor({ state: 'detached' });
    await dropped.locator('button[aria-label="Remove dropped.txt"]').click();
    await dropped.waitFor({ state: 'detached' });
    await page.locator('.c-att progress').waitFor({ state: 'detached' });
    await page.locator('.c-status', { hasText: 'Draft saved' }).waitFor({ timeout: 10000 });
    await page.click('.compose button[type=submit]');
    await toast(page, 'Message sent');
  });

  await step('reply keeps the thread', async () => {
    await row(page, 'Project plan').locator('.row-link').click();
    await page.locator('.message').nth(1).waitFor();
    await page.locator('.message').last().locator('.msg-actions button', { hasText: /^Reply$/ }).click();
    check((await page.inputValue('#c-subject')) === 'Re: Project plan', 'Re: subject');
    check((await page.inputValue('#c-to')).includes('bob@example.test'), 'reply goes to the sender');
    check((await page.inputValue('#c-body')).includes('> Looks good.'), 'quoted text');
    await page.click('.compose button[type=submit]');
    await toast(page, 'Message sent');
  });

  await step('inline cid: image and attachment preview', async () => {
    await row(page, 'Photo of the day').locator('.row-link').click();
    const frame = page.locator('iframe.mail-frame');
    await frame.waitFor();
    await page.frameLocator('iframe.mail-frame').locator('img').waitFor();
    for (let i = 0; ; i++) {
      const w = await frame.evaluate((el) => el.contentDocument?.querySelector('img')?.naturalWidth || 0);
      if (w === 3) break;
      check(i < 50, 'the cid: image loads from the server');
      await page.waitForTimeout(100);
    }
    check((await page.locator('.message.open .attachment').count()) === 0, 'an inline image is not listed as an attachment');
    await row(page, 'Zoo trip').locator('.row-link').click();
    await page.locator('.attachment', { hasText: 'zebra.png' }).locator('button', { hasText: 'Preview' }).click();
    const img = page.locator('dialog.preview-dlg img');
    await img.waitFor();
    await page.waitForFunction(() => document.querySelector('dialog.preview-dlg img')?.naturalWidth === 3);
    check((await img.getAttribute('src')).startsWith('blob:'), 'previewed from an object URL');
    await page.click('dialog.preview-dlg button:text("Close")');
  });

  await step('forward as attachment', async () => {
    await page.locator('.message.open .msg-actions summary').click();
    await page.locator('.message.open .menu-item', { hasText: 'Forward as attachment' }).click();
    check((await page.inputValue('#c-subject')) === 'Fwd: Zoo trip', 'Fwd: subject');
    await page.locator('.c-att', { hasText: 'Zoo trip.eml' }).waitFor();
    await page.fill('#c-to', 'bob@example.test');
    await page.click('.compose button[type=submit]');
    await toast(page, 'Message sent');
  });

  await step('rich text with a completed recipient', async () => {
    await page.click('.compose-btn');
    await page.locator('#c-to').pressSequentially('bo');
    const opt = page.locator('#c-to-list .suggest-item', { hasText: 'bob@example.test' });
    await opt.waitFor();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    check((await page.inputValue('#c-to')).startsWith('bob@example.test'), `completed: ${await page.inputValue('#c-to')}`);
    await page.fill('#c-subject', 'Rich hello');
    await page.click('.compose button:text("Rich text")');
    await page.locator('.c-rich').click();
    await page.keyboard.type('Bold words');
    await page.keyboard.press('Control+A');
    await page.click('.fmt-bar button[aria-label="Bold"]');
    check(/<(b|strong)>/.test(await page.locator('.c-rich').innerHTML()), 'bold applied');
    await page.click('.compose button[type=submit]');
    await toast(page, 'Message sent');
  });

  await step('a draft is saved, resumed and discarded', async () => {
    await page.click('.compose-btn');
    await page.fill('#c-to', 'bob@example.test');
    await page.fill('#c-subject', 'Draft to resume');
    await page.fill('#c-body', 'Half written.');
    await page.locator('.c-status', { hasText: 'Draft saved' }).waitFor({ timeout: 10000 });
    await page.click('.compose .c-head button[aria-label^="Close"]');
    await page.locator('.folder[data-role="drafts"]').click();
    await row(page, 'Draft to resume').locator('.row-link').click();
    await page.locator('.compose').waitFor();
    check((await page.inputValue('#c-subject')) === 'Draft to resume', 'the draft reopens');
    check((await page.inputValue('#c-body')).includes('Half written.'), 'with its text');
    await page.click('.compose button:text("Discard")');
    await row(page, 'Draft to resume').waitFor({ state: 'detached' });
    await page.locator('.folder[data-role="inbox"]').click();
  });

  await step('undo send', async () => {
    await page.click('.compose-btn');
    await page.fill('#c-to', 'bob@example.test');
    await page.fill('#c-subject', 'Undo me');
    await page.fill('#c-body', 'Oops.');
    await page.click('.compose button[type=submit]');
    await page.locator('#toast button', { hasText: 'Undo' }).click();
    await page.locator('.compose').waitFor();
    check((await page.inputValue('#c-subject')) === 'Undo me', 'the message comes back to the editor');
    await page.click('.compose button:text("Discard")');
    await page.locator('.compose').waitFor({ state: 'detached' });
  });

  await step('search shows highlighted snippets', async () => {
    await page.fill('#search', 'zebra');
    await page.press('#search', 'Enter');
    const mark = page.locator('.row mark');
    await mark.first().waitFor();
    check(/zebra/i.test(await mark.first().textContent()), 'the match is marked');
    check((await page.locator('.row').count()) === 1, 'one result');
    await page.fill('#search', 'from:spam.example');
    await page.press('#search', 'Enter');
    await row(page, 'Cheap pills').waitFor();
    await page.goto(BASE + '/#/');
    await row(page, 'Lunch on Friday').waitFor();
  });

  await step('create a folder and move by drag and drop', async () => {
    await page.click('.side button:text("New folder")');
    await page.fill('#ask-name', 'Projects');
    await page.click('.ask button[type=submit]');
    const folder = page.locator('.folder', { hasText: 'Projects' });
    await folder.waitFor();
    // The folder list is re-rendered when the new mailbox's state arrives;
    // a drop that may have raced that re-render is repeated once (seen once
    // in a full run: the row stayed). A move that never happens still fails.
    for (let attempt = 1; ; attempt++) {
      await row(page, 'Lunch on Friday').dragTo(folder);
      try {
        await row(page, 'Lunch on Friday').waitFor({ state: 'detached', timeout: attempt === 1 ? 5000 : 30000 });
        break;
      } catch (e) {
        if (attempt > 1) throw e;
        console.log('webmail: drag and drop repeated once');
      }
    }
    await folder.click();
    await row(page, 'Lunch on Friday').waitFor();
    await page.locator('.folder[data-role="inbox"]').click();
  });

  await step('nested folder, renamed', async () => {
    await page.click('.side button:text("New folder")');
    await page.fill('#ask-name', 'Scratch');
    await page.selectOption('#ask-parent', { label: '\u00a0\u00a0Projects'.replace(/^\u00a0\u00a0/, '') }).catch(async () => {
      const id = await page.locator('.folder', { hasText: 'Projects' }).getAttribute('data-mailbox');
      await page.selectOption('#ask-parent', id);
    });
    await page.click('.ask button[type=submit]');
    const scratch = page.locator('.folder-item', { hasText: 'Scratch' });
    await scratch.waitFor();
    check(Number(await scratch.locator('.folder').evaluate((a) => getComputedStyle(a).getPropertyValue('--depth'))) === 1, 'Scratch sits inside Projects');
    await scratch.hover();
    await scratch.locator('.folder-menu').click();
    await page.fill('#ask-name', 'Later');
    await page.click('.ask button[type=submit]');
    await page.locator('.folder', { hasText: 'Later' }).waitFor();
  });

  await step('spam and not spam', async () => {
    await row(page, 'Cheap pills').locator('.check').check();
    await page.click('.list-bar button[aria-label="Spam"]');
    await row(page, 'Cheap pills').waitFor({ state: 'detached' });
    await page.locator('.folder[data-role="junk"]').click();
    await row(page, 'Cheap pills').locator('.check').check();
    await page.click('.list-bar button[aria-label="Not spam"]');
    await row(page, 'Cheap pills').waitFor({ state: 'detached' });
    await page.locator('.folder[data-role="inbox"]').click();
    await row(page, 'Cheap pills').waitFor();
  });

  await step('keyboard shortcuts', async () => {
    await page.locator('.reader').click({ position: { x: 5, y: 5 } }).catch(() => {});
    const pos = async () => Number(await page.locator('.row.cursor').getAttribute('data-pos'));
    const subj = () => page.locator('.row.cursor .subject').textContent();
    await page.keyboard.press('j');
    check((await pos()) === 0, 'j: the first row');
    for (let i = 0; !(await subj()).startsWith('Filler'); i++) {
      check(i < 10, 'j walks down to the fillers');
      await page.keyboard.press('j');
    }
    const p = await pos();
    await page.keyboard.press('k');
    check((await pos()) === p - 1, 'k: one up');
    await page.keyboard.press('j');
    out.archived = await subj();
    await page.keyboard.press('e');
    await row(page, out.archived).waitFor({ state: 'detached' });
    await page.keyboard.press('j');
    out.deleted = await page.locator('.row.cursor .subject').textContent();
    await page.keyboard.press('#');
    await row(page, out.deleted).waitFor({ state: 'detached' });
    const starred = page.locator('.row.cursor .star');
    check((await starred.getAttribute('aria-pressed')) === 'false', 'not flagged yet');
    await page.keyboard.press('s');
    await page.locator('.row.cursor .star[aria-pressed="true"]').waitFor();
    out.flagged = await page.locator('.row.cursor .subject').textContent();
    await page.keyboard.press('/');
    check(await page.evaluate(() => document.activeElement.id === 'search'), '/ focuses the search box');
    await page.keyboard.press('j');
    check((await page.inputValue('#search')) === 'j', 'typing in the search box is not a shortcut');
    await page.fill('#search', '');
    await page.locator('#search').blur();
    await page.keyboard.press('c');
    await page.locator('.compose').waitFor();
    await page.keyboard.press('Escape');
    await page.locator('.compose').waitFor({ state: 'detached' });
    await page.keyboard.press('?');
    await page.locator('dialog.help').waitFor();
    await page.screenshot({ path: join(SHOTS, 'desktop-help.png') });
    check(/Archive/.test(await page.locator('dialog.help').textContent()), 'help lists the shortcuts');
    await page.keyboard.press('Escape');
    await page.locator('dialog.help').waitFor({ state: 'detached' });
    await page.keyboard.press('j');
    await page.keyboard.press('o');
    await page.locator('.message').first().waitFor();
    await page.keyboard.press('u');
    await page.locator('.reader-empty').waitFor();
  });

  await step('messages mode, shift-click range, empty Trash', async () => {
    await page.locator('.folder[data-role="inbox"]').click();
    await row(page, 'Project plan').first().waitFor();
    const threaded = await page.locator('.row .subject', { hasText: /^(Re: )?Project plan$/ }).count();
    await page.click('.list-bar button[aria-pressed]');
    await page.locator('.list-bar button[aria-pressed="false"]').waitFor();
    await row(page, /^Project plan$/).waitFor();
    const single = await page.locator('.row .subject', { hasText: /^(Re: )?Project plan$/ }).count();
    check(threaded === 1 && single === 2, `one conversation, two messages (${threaded}, ${single})`);
    await page.click('.list-bar button[aria-pressed]');
    await page.locator('.list-bar button[aria-pressed="true"]').waitFor();
    await page.locator('.row[data-pos="0"] .check').click();
    await page.locator('.row[data-pos="3"] .check').click({ modifiers: ['Shift'] });
    check((await page.locator('.sel-count').textContent()) === '4 selected', 'shift-click selects the range');
    await page.locator('.list-bar .check').uncheck();
    await page.locator('.sel-count').waitFor({ state: 'detached' });
    await page.locator('.folder[data-role="trash"]').click();
    await row(page, out.deleted).waitFor();
    page.once('dialog', (d) => d.accept());
    await page.click('.list-bar button:text("Empty Trash")');
    await page.locator('.list-pane .empty:not([hidden])').waitFor();
    await page.locator('.folder[data-role="inbox"]').click();
    await row(page, 'Cheap pills').waitFor();
  });

  await step('live update without reload', async () => {
    await page.locator('.folder[data-role="inbox"]').click();
    await page.evaluate(() => (window.__noReload = true));
    check((await ask('deliver')) === 'delivered', 'python delivered');
    await row(page, 'Live update arrives').waitFor({ timeout: 15000 });
    check(await page.evaluate(() => window.__noReload === true), 'same page');
  });

  await step('cross-origin forms are refused', async () => {
    const p2 = await ctx.newPage();
    for (const [k, path] of [['api', '/jmap/api'], ['login', '/auth/session']]) {
      const resp = p2.waitForResponse((r) => r.url() === BASE + path);
      await p2.goto(`${ATTACKER}/${k}.html`);
      out.csrf[k] = (await resp).status();
    }
    await p2.close();
  });

  await step('push: the worker verifies the subscription and notifies', async () => {
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    const cdp = await ctx.newCDPSession(page);
    const regs = new Promise((resolve) => cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
      const r = e.registrations.find((x) => x.scopeURL === BASE + '/' && !x.isDeleted);
      if (r) resolve(r.registrationId);
    }));
    await cdp.send('ServiceWorker.enable');
    const registrationId = await regs;
    const verification = await ask('push-verification');
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: BASE, registrationId, data: verification });
    const change = await ask('push-verified?');
    check(JSON.parse(change)['@type'] === 'StateChange', 'a state change came after verification');
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: BASE, registrationId, data: change });
    const count = () => page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).length);
    for (let i = 0; (await count()) !== 1; i++) {
      check(i < 50, 'one notification within 10 s');
      await page.waitForTimeout(200);
    }
    out.notification = await page.evaluate(async () => {
      const [n] = await (await navigator.serviceWorker.ready).getNotifications();
      return { title: n.title, body: n.body };
    });
    check(out.notification.body.length > 0, `notification ${JSON.stringify(out.notification)}`);
  });

  await step('offline start shows the saved mailbox', async () => {
    await page.goto(BASE + '/#/');
    await page.waitForFunction(() => !!navigator.serviceWorker.controller);
    await page.reload();
    await page.locator('body[data-ready="1"]').waitFor();
    await row(page, 'Live update arrives').waitFor();
    await ctx.setOffline(true);
    await page.reload();
    await page.locator('.offline-banner:not([hidden])').waitFor();
    await page.locator('.folder[data-role="inbox"]').waitFor();
    await row(page, 'Live update arrives').waitFor();
    await page.screenshot({ path: join(SHOTS, 'desktop-offline.png') });
    await ctx.setOffline(false);
  });

  await step('screenshots: desktop and phone', async () => {
    await page.goto(BASE + '/#/');
    await page.locator('body[data-ready="1"]').waitFor();
    await row(page, 'Weekly newsletter').locator('.row-link').click();
    await page.locator('iframe.mail-frame').waitFor();
    await page.screenshot({ path: join(SHOTS, 'desktop-1440x900.png') });
    const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, a[href], input, select, textarea, summary, iframe')]
      .filter((el) => el.offsetParent !== null || el.tagName === 'IFRAME')
      .filter((el) => !(el.getAttribute('aria-label') || el.getAttribute('title') || (el.labels && el.labels.length) || el.textContent.trim()))
      .map((el) => el.outerHTML.slice(0, 80)));
    check(!unnamed.length, `every control has a name: ${unnamed}`);
    const state = await ctx.storageState();
    for (const scheme of ['light', 'dark']) {
      const phone = await newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, storageState: state, colorScheme: scheme });
      const p = await phone.newPage();
      watch(p);
      await p.goto(BASE + '/#/');
      await p.locator('body[data-ready="1"]').waitFor();
      await row(p, 'Project plan').waitFor();
      await p.screenshot({ path: join(SHOTS, `phone-${scheme}-list.png`), animations: 'disabled' });
      const tooSmall = await p.evaluate(() => [...document.querySelectorAll('.top button, .top a, .row .star, .list-bar button')]
        .filter((el) => el.offsetParent && (el.getBoundingClientRect().height < 44 || el.getBoundingClientRect().width < 40))
        .map((el) => el.getAttribute('aria-label') || el.textContent));
      check(!tooSmall.length, `touch targets of 44 px: ${tooSmall}`);
      await row(p, 'Project plan').locator('.row-link').click();
      await p.locator('.message').first().waitFor();
      check(!(await p.locator('.list-pane').isVisible()), 'one pane at a time');
      await p.screenshot({ path: join(SHOTS, `phone-${scheme}-thread.png`) });
      await p.click('.thread-bar .back');
      await row(p, 'Project plan').waitFor();
      if (scheme === 'light') {
        await p.click('.top button[aria-label="Folders"]');
        await p.locator('.side .folder[data-role="inbox"]').waitFor();
        await p.screenshot({ path: join(SHOTS, 'phone-light-folders.png'), animations: 'disabled' });
        await p.locator('.scrim').click({ position: { x: 340, y: 400 } });
        check(await p.evaluate(() => document.documentElement.scrollWidth <= innerWidth && innerWidth === 360), 'nothing wider than the phone');
        await p.click('.fab');
        await p.locator('.compose').waitFor();
        await p.screenshot({ path: join(SHOTS, 'phone-light-compose.png'), animations: 'disabled' });
      }
      await phone.close();
    }
  });

  await step('settings: vacation responder and an app password', async () => {
    await page.goto(BASE + '/#/settings');
    await page.locator('#vac-subject').waitFor();
    // First, since a new password signs out app passwords too.
    // Password change (when the server has /api/password), and back.
    if (await page.locator('#pw-old').count()) {
      for (const [from, to] of [[PASS, PASS + '-new'], [PASS + '-new', PASS]]) {
        await page.fill('#pw-old', from);
        await page.fill('#pw-new', to);
        await page.fill('#pw-again', to);
        await page.click('form:has(#pw-old) button[type=submit]');
        await page.locator('form:has(#pw-old) [role=status]', { hasText: 'Password changed' }).waitFor();
        const r = await (await import('playwright-core')).request.newContext().then((rc) =>
          rc.get(BASE + '/jmap/session', { headers: { Authorization: 'Basic ' + Buffer.from(`${USER}:${to}`).toString('base64') } }));
        check(r.status() === 200, `the new password works (${r.status()})`);
        await page.locator('form:has(#pw-old) [role=status]').evaluate((el) => (el.textContent = ''));
      }
      out.passwordChanged = true;
    }
    await page.check('#vac-on');
    await page.fill('#vac-subject', 'Away until Monday');
    await page.fill('#vac-text', 'I am away.');
    await page.click('form:has(#vac-subject) button[type=submit]');
    await toast(page, 'Vacation responder saved');
    await page.locator('.vacation-banner:not([hidden])').waitFor();
    await page.fill('#ap-name', 'Test app');
    await page.click('form:has(#ap-name) button[type=submit]');
    const secret = page.locator('.secret');
    await secret.waitFor();
    out.appPassword = (await secret.textContent()).trim();
    await page.locator('td', { hasText: 'Test app' }).waitFor();
    await page.locator('td', { hasText: 'Webmail' }).first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'desktop-settings.png') });
    // Identity and signature (when the server has Identity/set).
    if (await page.locator('.identity-name:not([disabled])').count()) {
      await page.fill('.identity-name', 'Alice Example');
      await page.fill('.identity-signature', 'Alice, from the browser test');
      await page.locator('form:has(.identity-name) button[type=submit]').click();
      await toast(page, 'Identity saved');
      out.identitySaved = true;
    }
  });

  await step('sign out', async () => {
    await page.click('.side-foot button');
    await page.locator('.login').waitFor();
    const r = await ctx.request.get(BASE + '/jmap/session');
    check(r.status() === 401, `the session is revoked (${r.status()})`);
    check(!(await page.evaluate(() => caches.has('lb-data'))), 'saved mail is dropped at sign-out');
    await signIn(page);
    await row(page, 'Cheap pills').waitFor();
    await page.keyboard.press('j');
    await page.keyboard.press('x');
    check(await page.locator('.row.cursor').getAttribute('data-pos') === '0', 'shortcuts are bound once (j moved one row)');
    check((await page.locator('.sel-count').textContent()) === '1 selected', 'x selected it once');
  });

  check(!pageErrors.length, `no page errors: ${pageErrors}`);
  out.offHost = offHost.filter((u, i) => i < allowedFrom || !u.startsWith('http://198.51.100.7/'));
  process.stdout.write(JSON.stringify(out) + '\n');
  await browser.close();
  process.exit(0);
} catch (e) {
  log(`FAILED at step "${current}": ${e.stack || e}`);
  if (pageErrors.length) log(`page errors: ${pageErrors.join(' | ')}`);
  await browser.close().catch(() => {});
  process.exit(1);
}
