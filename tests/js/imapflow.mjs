// Drive Letterbox with npm's imapflow, which negotiates COMPRESS=DEFLATE,
// CONDSTORE and QRESYNC when offered. Usage: node imapflow.mjs PORT USER PASS
// Prints one JSON object with what the client saw.
import { ImapFlow } from "imapflow";

const [port, user, pass] = process.argv.slice(2);

async function session(extra = {}) {
  const c = new ImapFlow({
    host: "127.0.0.1",
    port: Number(port),
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass },
    logger: false,
    qresync: true,
    ...extra,
  });
  await c.connect();
  return c;
}

const out = {};
const c = await session();
out.compressed = !!c._deflate;
out.enabled = [...c.enabled].sort();
const box = await c.mailboxOpen("INBOX");
out.exists = box.exists;
out.highestModseq = String(box.highestModseq);
out.uidValidity = String(box.uidValidity);
// A big fetch over the compressed stream.
let n = 0, bytes = 0;
for await (const m of c.fetch("1:*", { uid: true, flags: true, source: true, envelope: true })) {
  n++;
  bytes += m.source.length;
}
out.fetched = n;
out.sourceBytes = bytes;
// Flag changes and an expunge in this session.
await c.messageFlagsAdd("1:2", ["\\Seen", "$Work"]);
await c.messageFlagsAdd("3", ["\\Deleted"]);
await c.messageDelete("3");
const changed = [];
for await (const m of c.fetch("1:*", { uid: true, flags: true }, { changedSince: BigInt(out.highestModseq) })) {
  changed.push({ uid: m.uid, flags: [...m.flags].sort(), modseq: String(m.modseq) });
}
out.changed = changed;
out.status = await c.status("INBOX", { messages: true, highestModseq: true });
out.status.highestModseq = String(out.status.highestModseq);
// Another client, meanwhile, expunges: this session hears VANISHED.
const vanished = [];
c.on("expunge", (e) => vanished.push({ uid: e.uid ?? null, vanished: !!e.vanished, seq: e.seq ?? null }));
const other = await session({ disableCompression: true });
await other.mailboxOpen("INBOX");
await other.messageDelete("4", { uid: true });
await other.logout();
await c.noop();
out.vanishedEvents = vanished;
// Search and sort over the compressed stream.
out.search = await c.search({ seen: true }, { uid: true });
await c.logout();
console.log(JSON.stringify(out));
