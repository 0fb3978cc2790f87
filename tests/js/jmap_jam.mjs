// Drives Letterbox with npm's jmap-jam (a third-party JMAP client) and the
// `eventsource` package for push. Driven by tests/test_jmap_jam.py, which
// passes the session URL and a Bearer token in the environment, waits for
// the "listening" line to deliver a message over SMTP, and checks the JSON
// summary printed last against IMAP.
import JamClient from "jmap-jam";
import { EventSource } from "eventsource";
import { createInterface } from "node:readline";

const { SESSION_URL, TOKEN, TO } = process.env;
const jam = new JamClient({ sessionUrl: SESSION_URL, bearerToken: TOKEN });
const out = {};
const say = (line) => process.stdout.write(line + "\n");

// Session discovery (RFC 8620 §2) through /.well-known/jmap.
const session = await jam.session;
const accountId = await jam.getPrimaryAccount();
out.username = session.username;

// Mailbox list.
const [mailboxes] = await jam.api.Mailbox.get({ accountId, ids: null });
const byRole = Object.fromEntries(mailboxes.list.map((m) => [m.role ?? m.name, m]));
out.mailboxes = mailboxes.list.map((m) => m.name).sort();
const inbox = byRole.inbox;

// Push: jmap-jam builds the EventSource URL from the session's template; the
// `eventsource` package adds the Bearer header that browsers' EventSource
// cannot send (Node 20 has no global EventSource).
globalThis.EventSource = class extends EventSource {
  constructor(url) {
    super(url, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } }),
    });
  }
};
const [before] = await jam.api.Email.get({ accountId, ids: [] });
const events = await jam.connectEventSource({ types: "*", ping: 0 });
const opened = new Promise((resolve, reject) => {
  events.onopen = resolve;
  events.onerror = (e) => reject(new Error(`EventSource: ${e.message ?? e.type}`));
});
const pushed = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no push within 10 s")), 10000);
  events.addEventListener("state", (e) => {
    const change = JSON.parse(e.data);
    const emailState = change.changed?.[accountId]?.Email;
    if (emailState && emailState !== before.state) {
      clearTimeout(timer);
      resolve(change);
    }
  });
});
await opened;
say("listening");
// The test delivers over SMTP now and then writes a line to stdin.
const rl = createInterface({ input: process.stdin });
await new Promise((resolve) => rl.once("line", resolve));
rl.close();
const change = await pushed;
events.close();
out.pushType = change["@type"];

// Query the newest message and get its thread, in one request with a result
// reference (RFC 8620 §3.7).
const [{ query, thread, emails }] = await jam.requestMany((t) => {
  const query = t.Email.query({
    accountId,
    filter: { inMailbox: inbox.id },
    sort: [{ property: "receivedAt", isAscending: false }],
    collapseThreads: true,
    limit: 10,
  });
  const first = t.Email.get({ accountId, ids: query.$ref("/ids"), properties: ["threadId"] });
  const thread = t.Thread.get({ accountId, ids: first.$ref("/list/*/threadId") });
  const emails = t.Email.get({
    accountId,
    ids: thread.$ref("/list/*/emailIds"),
    properties: ["id", "subject", "from", "keywords", "preview", "messageId"],
  });
  return { query, first, thread, emails };
});
out.queryIds = query.ids.length;
out.threadEmails = thread.list[0].emailIds.length;
out.subjects = emails.list.map((e) => e.subject);
const received = emails.list[emails.list.length - 1];

// Set keywords with patch syntax (RFC 8620 §5.3).
const [flagged] = await jam.api.Email.set({
  accountId,
  update: { [received.id]: { "keywords/$flagged": true, "keywords/$seen": true } },
});
out.updated = Object.keys(flagged.updated ?? {});

// Upload an attachment (RFC 8620 §6.1), then create and submit a reply with it.
const attachment = "Letterbox attachment from jmap-jam\n".repeat(50);
const blob = await jam.uploadBlob(accountId, new Blob([attachment], { type: "text/plain" }));
out.blobSize = blob.size;
const [identities] = await jam.api.Identity.get({ accountId });
const identity = identities.list[0];
const [created] = await jam.api.Email.set({
  accountId,
  create: {
    draft: {
      mailboxIds: { [byRole.drafts.id]: true },
      keywords: { $draft: true, $seen: true },
      from: [{ name: identity.name, email: identity.email }],
      to: [{ email: TO }],
      subject: "Re: " + received.subject,
      inReplyTo: received.messageId,
      references: received.messageId,
      bodyStructure: {
        type: "multipart/mixed",
        subParts: [
          { partId: "text", type: "text/plain" },
          { blobId: blob.blobId, type: "text/plain", name: "notes.txt", disposition: "attachment" },
        ],
      },
      bodyValues: { text: { value: "Noon works. Notes attached.\n" } },
    },
  },
});
if (!created.created?.draft) throw new Error(`Email/set: ${JSON.stringify(created.notCreated)}`);
// Submitted in a request of its own: the implicit Email/set answer to
// onSuccessUpdateEmail shares the call id (RFC 8621 §7.5), and jmap-jam's
// requestMany keeps one response per id; request() returns the first.
const [submitted, meta] = await jam.api.EmailSubmission.set({
  accountId,
  create: { send: { identityId: identity.id, emailId: created.created.draft.id } },
  onSuccessUpdateEmail: {
    "#send": {
      [`mailboxIds/${byRole.drafts.id}`]: null,
      [`mailboxIds/${byRole.sent.id}`]: true,
      "keywords/$draft": null,
    },
  },
});
if (!submitted.created?.send) throw new Error(`EmailSubmission/set: ${JSON.stringify(submitted.notCreated)}`);
out.createdEmail = Boolean(created.created?.draft?.id);
out.submitted = Boolean(submitted.created?.send?.id);
out.sessionState = Boolean(meta.sessionState);

// The sent copy moved from Drafts to Sent; download its attachment back.
const [sent] = await jam.api.Email.get({
  accountId,
  ids: [created.created.draft.id],
  properties: ["mailboxIds", "keywords", "attachments"],
});
const copy = sent.list[0];
out.sentMailboxes = Object.keys(copy.mailboxIds).map((id) => mailboxes.list.find((m) => m.id === id)?.role);
out.sentKeywords = Object.keys(copy.keywords).sort();
const part = copy.attachments[0];
const download = await jam.downloadBlob({
  accountId,
  blobId: part.blobId,
  mimeType: part.type,
  fileName: part.name,
});
out.downloadMatches = (await download.text()) === attachment;
out.downloadType = download.headers.get("content-type");

say(JSON.stringify(out));
