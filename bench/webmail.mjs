// bench/webmail.mjs: the webmail's speed as a user sees it, in headless
// Chromium on loopback (issue 14's targets): first paint of a mailbox
// after signing in, opening a message, switching mailbox, search results,
// and the bytes transferred (as sent, compressed) for the first load and
// for opening one message. Needs `npm ci` in tests/js (playwright-core)
// and Debian's chromium.
//
//   node bench/webmail.mjs --url http://127.0.0.1:8080 --user U --password P \
//        --mailbox bench-search [--other INBOX --other-subject 'Inbox message']
//        [--query zebracorn] [--rounds 5] [--json out.json]
//
// The big mailbox is the one `letterbox-bench search` fills; the other
// needs messages whose subject contains --other-subject.
//
// Every non-loopback request is refused. Times are medians over the rounds
// (a fresh browser context each: cold caches, a new sign-in).

import { chromium } from '../tests/js/node_modules/playwright-core/index.mjs';
import { writeFileSync } from 'node:fs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const BASE = arg('url', 'http://127.0.0.1:8080');
const USER = arg('user', 'user1@example.test');
const PASS = arg('password', 'password');
const MAILBOX = arg('mailbox', 'bench-search');
const OTHER = arg('other', 'INBOX');
const QUERY = arg('query', 'zebracorn');
const OTHER_SUBJECT = arg('other-subject', 'Inbox message');
const ROUNDS = Number(arg('rounds', '5'));

async function jmap(calls) {
  const auth = 'Basic ' + Buffer.from(`${USER}:${PASS}`).toString('base64');
  const session = await (await fetch(`${BASE}/jmap/session`, { headers: { Authorization: auth } })).json();
  const account = session.primaryAccounts['urn:ietf:params:jmap:mail'];
  const body = { using: ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail'], methodCalls: calls(account) };
  const r = await fetch(`${BASE}/jmap/api`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return (await r.json()).methodResponses;
}

const [[, boxes]] = await jmap((a) => [['Mailbox/get', { accountId: a, properties: ['name', 'role', 'totalEmails'] }, '0']]);
const big = boxes.list.find((m) => m.name === MAILBOX);
const other = boxes.list.find((m) => m.name === OTHER || m.role === OTHER.toLowerCase());
if (!big || !other) throw new Error(`no mailbox ${MAILBOX} or ${OTHER}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--proxy-server=http://127.0.0.1:9', '--proxy-bypass-list=127.0.0.1'],
});

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const results = { signin_to_first_row_ms: [], open_message_ms: [], switch_mailbox_ms: [], search_ms: [], first_load_bytes: [], open_message_bytes: [], first_load_requests: [] };

for (let round = 0; round < ROUNDS; round++) {
  // No service worker: its cache would hide what crosses the network.
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, serviceWorkers: 'block' });
  await ctx.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0;
  let requests = 0;
  cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; requests += 1; });

  await page.goto(`${BASE}/#/m/${big.id}`);
  await page.fill('#login-user', USER);
  await page.fill('#login-pass', PASS);
  let t = performance.now();
  await page.click('.login button[type=submit]');
  await page.locator('.row').first().waitFor();
  results.signin_to_first_row_ms.push(performance.now() - t);
  // Let the first paint's stragglers (counts, push stream) land.
  await page.waitForTimeout(300);
  results.first_load_bytes.push(bytes);
  results.first_load_requests.push(requests);

  bytes = 0;
  t = performance.now();
  await page.locator('.row .row-link').nth(3).click();
  await page.locator('.message .text-body, .message iframe.mail-frame').first().waitFor();
  results.open_message_ms.push(performance.now() - t);
  await page.waitForTimeout(200);
  results.open_message_bytes.push(bytes);

  t = performance.now();
  await page.locator(`.folder[data-mailbox="${other.id}"]`).click();
  // A row only that mailbox has (the other's rows may still be on screen).
  await page.locator('.row .subject', { hasText: OTHER_SUBJECT }).first().waitFor();
  results.switch_mailbox_ms.push(performance.now() - t);

  t = performance.now();
  await page.fill('#search', QUERY);
  await page.press('#search', 'Enter');
  await page.locator('.row mark').first().waitFor();
  results.search_ms.push(performance.now() - t);
  await ctx.close();
}
await browser.close();

const summary = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v) * 10) / 10]));
summary.mailbox_emails = big.totalEmails;
summary.rounds = ROUNDS;
console.log(JSON.stringify(summary, null, 2));
const out = arg('json');
if (out) writeFileSync(out, JSON.stringify({ summary, results }, null, 2));
