// The @xmpp/client driver of the client matrix (tests/clients/xmppjs.py).
//
//   node driver.mjs PORT DOMAIN PASSWORD A B C ROOM
//
// A and B log in over TCP (STARTTLS, the library's SASL), C only for the
// offline scenario. Prints one JSON object: scenario -> {status, note}.
// Every wait is bounded; an error from the server fails its cell.
import { client, xml } from "@xmpp/client";

// @xmpp/iq 0.14 rejects a request's promise before it awaits it when the
// error answer arrives before send() has resolved; Node would end the process
// on that "unhandled" rejection, although the request still gets it.
process.on("unhandledRejection", () => {});

const [port, domain, password, userA, userB, userC, room] = process.argv.slice(2);
const STEP = 5000;
const cells = {};
const pass = (key, note = "") => { cells[key] = { status: "pass", note }; };
const fail = (key, note) => { cells[key] = { status: "fail", note: String(note) }; };

function connect(username) {
  const xmpp = client({
    service: `xmpp://127.0.0.1:${port}`, domain, username, password,
    resource: "xmppjs",
  });
  xmpp.on("error", () => {});
  xmpp.waiters = [];
  xmpp.seen = [];
  xmpp.on("stanza", (stanza) => {
    xmpp.seen.push(stanza);
    for (const w of [...xmpp.waiters]) {
      if (w.test(stanza)) {
        xmpp.waiters.splice(xmpp.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(stanza);
      }
    }
  });
  return xmpp;
}

// The first stanza (already seen or still to come) for which test is true.
function waitFor(xmpp, test, what, ms = STEP) {
  const old = xmpp.seen.find(test);
  if (old) return Promise.resolve(old);
  return new Promise((resolve, reject) => {
    const w = { test, resolve };
    w.timer = setTimeout(() => {
      xmpp.waiters.splice(xmpp.waiters.indexOf(w), 1);
      reject(new Error(`no ${what} within ${ms} ms`));
    }, ms);
    xmpp.waiters.push(w);
  });
}

function withTimeout(promise, what, ms = STEP) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(timer));
}

async function online(username) {
  const xmpp = connect(username);
  await withTimeout(xmpp.start(), `login of ${username}`, 15000);
  await xmpp.send(xml("presence"));
  return xmpp;
}

const bare = (j) => String(j).split("/")[0];
const jidOf = (u) => `${u}@${domain}`;
const text = (el, name) => el.getChildText(name);
const errorOf = (e) => (e && e.condition) ? `${e.condition}${e.text ? ": " + e.text : ""}` : String(e && e.message || e);

async function scenario(key, body) {
  try {
    await body();
  } catch (e) {
    fail(key, errorOf(e));
  }
}

let a; let b;
try {
  a = await online(userA);
  b = await online(userB);
} catch (e) {
  process.stdout.write(JSON.stringify({ _login: errorOf(e) }) + "\n");
  process.exit(0);
}

await scenario("roster", async () => {
  const before = await a.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
  if (!before) throw new Error("no roster");
  await a.iqCaller.set(xml("query", { xmlns: "jabber:iq:roster" },
    xml("item", { jid: jidOf(userB), name: "Bob" })));
  await b.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
  await a.send(xml("presence", { to: jidOf(userB), type: "subscribe" }));
  await waitFor(b, (s) => s.is("presence") && s.attrs.type === "subscribe"
    && bare(s.attrs.from) === jidOf(userA), "subscribe at B");
  await b.send(xml("presence", { to: jidOf(userA), type: "subscribed" }));
  await b.send(xml("presence", { to: jidOf(userA), type: "subscribe" }));
  await waitFor(a, (s) => s.is("presence") && s.attrs.type === "subscribe"
    && bare(s.attrs.from) === jidOf(userB), "subscribe at A");
  await a.send(xml("presence", { to: jidOf(userB), type: "subscribed" }));
  const push = (who, other) => (s) => s.is("iq") && s.attrs.type === "set"
    && s.getChild("query", "jabber:iq:roster")?.getChildren("item")
      .some((i) => i.attrs.jid === other && i.attrs.subscription === "both");
  await waitFor(a, push(a, jidOf(userB)), "roster push 'both' at A");
  await waitFor(b, push(b, jidOf(userA)), "roster push 'both' at B");
  const after = await a.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
  const item = after.getChildren("item").find((i) => i.attrs.jid === jidOf(userB));
  if (!item || item.attrs.subscription !== "both") throw new Error(`roster item: ${item}`);
  pass("roster", "list, add, subscribe/subscribed both ways, pushes, 'both' on the roster");
});

await scenario("presence", async () => {
  await a.send(xml("presence", {}, xml("show", {}, "away"), xml("status", {}, "js away")));
  await waitFor(b, (s) => s.is("presence") && bare(s.attrs.from) === jidOf(userA)
    && text(s, "status") === "js away", "A's presence at B");
  await a.send(xml("presence"));
  pass("presence", "show/status broadcast to the subscribed contact");
});

await scenario("chat", async () => {
  await a.send(xml("message", { to: jidOf(userB), type: "chat" }, xml("body", {}, "js a->b")));
  await waitFor(b, (s) => s.is("message") && text(s, "body") === "js a->b", "message at B");
  await b.send(xml("message", { to: jidOf(userA), type: "chat" }, xml("body", {}, "js b->a")));
  await waitFor(a, (s) => s.is("message") && text(s, "body") === "js b->a", "message at A");
  pass("chat", "both ways");
});

await scenario("offline", async () => {
  await a.send(xml("message", { to: jidOf(userC), type: "chat" },
    xml("body", {}, "js while you were out")));
  await a.iqCaller.request(xml("iq", { type: "get", to: domain },
    xml("ping", { xmlns: "urn:xmpp:ping" })));  // the message is handled before this
  const c = connect(userC);
  const got = waitFor(c, (s) => s.is("message") && text(s, "body") === "js while you were out",
    "offline message at C's login", 10000);
  await withTimeout(c.start(), `login of ${userC}`, 15000);
  await c.send(xml("presence"));
  const msg = await got;
  await c.stop();
  if (!msg.getChild("delay", "urn:xmpp:delay")) throw new Error("no delay stamp");
  pass("offline", "delivered at login with a delay stamp");
});

await scenario("vcard", async () => {
  await a.iqCaller.set(xml("vCard", { xmlns: "vcard-temp" },
    xml("FN", {}, "Alice Js"), xml("NICKNAME", {}, "alicejs")));
  const own = await a.iqCaller.get(xml("vCard", { xmlns: "vcard-temp" }));
  const other = await b.iqCaller.get(xml("vCard", { xmlns: "vcard-temp" }), jidOf(userA));
  if (own.getChildText("FN") !== "Alice Js" || other.getChildText("FN") !== "Alice Js") {
    throw new Error(`FN read back: ${own.getChildText("FN")} / ${other.getChildText("FN")}`);
  }
  pass("vcard", "set, read back by its owner and by a contact");
});

await scenario("muc", async () => {
  const join = async (xmpp, nick) => {
    await xmpp.send(xml("presence", { to: `${room}/${nick}` },
      xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const answer = await waitFor(xmpp, (s) => s.is("presence")
      && bare(s.attrs.from) === room && (s.attrs.type === "error"
        || s.getChild("x", "http://jabber.org/protocol/muc#user")?.getChildren("status")
          .some((st) => st.attrs.code === "110")), `self-presence from ${room}`);
    if (answer.attrs.type === "error") {
      const err = answer.getChild("error");
      throw new Error(`join: ${err?.children[0]?.name || "error"}`);
    }
    const created = answer.getChild("x", "http://jabber.org/protocol/muc#user")
      .getChildren("status").some((st) => st.attrs.code === "201");
    if (created) {  // locked until its owner configures it: an instant room
      await xmpp.iqCaller.request(xml("iq", { type: "set", to: room },
        xml("query", { xmlns: "http://jabber.org/protocol/muc#owner" },
          xml("x", { xmlns: "jabber:x:data", type: "submit" }))));
    }
  };
  await join(a, "ajs");
  await join(b, "bjs");
  await a.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, "js to the room")));
  await waitFor(b, (s) => s.is("message") && s.attrs.type === "groupchat"
    && text(s, "body") === "js to the room", "groupchat at B");
  pass("muc", "both joined, groupchat seen by the other");
});

await scenario("carbons", async () => {
  await a.iqCaller.set(xml("enable", { xmlns: "urn:xmpp:carbons:2" }));
  pass("carbons", "enabled");
});

await scenario("mam", async () => {
  const answer = await a.iqCaller.request(xml("iq", { type: "set" },
    xml("query", { xmlns: "urn:xmpp:mam:2", queryid: "js1" })));
  const fin = answer.getChild("fin", "urn:xmpp:mam:2");
  if (!fin) throw new Error("no <fin/> in the answer");
  const got = a.seen.filter((s) => s.is("message")
    && s.getChild("result", "urn:xmpp:mam:2")?.attrs.queryid === "js1");
  pass("mam", `query answered, ${got.length} archived messages`);
});

await scenario("upload", async () => {
  const items = await a.iqCaller.get(xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }), domain);
  let service = null;
  for (const item of items.getChildren("item")) {
    let info;
    try {
      info = await a.iqCaller.get(xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }), item.attrs.jid);
    } catch {
      continue;  // an item without disco#info (an app) is not the service
    }
    if (info.getChildren("feature").some((f) => f.attrs.var === "urn:xmpp:http:upload:0")) {
      service = item.attrs.jid;
    }
  }
  if (!service) throw new Error("no upload service in disco");
  const data = Buffer.from("uploaded by @xmpp/client\n".repeat(40));
  const answer = await a.iqCaller.request(xml("iq", { type: "get", to: service },
    xml("request", {
      xmlns: "urn:xmpp:http:upload:0", filename: "js-upload.txt", size: String(data.length),
      "content-type": "text/plain",
    })));
  const slot = answer.getChild("slot", "urn:xmpp:http:upload:0");
  if (!slot) throw new Error("no slot in the answer");
  const put = slot.getChild("put").attrs.url;
  const get = slot.getChild("get").attrs.url;
  const putAnswer = await fetch(put, { method: "PUT", body: data, headers: { "Content-Type": "text/plain" } });
  if (putAnswer.status !== 201) throw new Error(`PUT: ${putAnswer.status}`);
  const back = Buffer.from(await (await fetch(get)).arrayBuffer());
  if (!back.equals(data)) throw new Error(`GET gave ${back.length} bytes`);
  pass("upload", `slot, PUT ${data.length} bytes, GET identical`);
});

await scenario("sm", async () => {
  const sm = a.streamManagement;
  if (!sm.enabled) throw new Error("stream management not enabled at login");
  const acked = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("a sent stanza never acknowledged")), STEP);
    sm.once("ack", () => { clearTimeout(timer); resolve(); });
  });
  await a.send(xml("message", { to: jidOf(userB), type: "chat" }, xml("body", {}, "js counted")));
  await acked;
  pass("sm", "enabled at login; a sent stanza acknowledged (<r/>, <a/>)");
});

try { await withTimeout(Promise.all([a.stop(), b.stop()]), "stop", 3000); } catch {}
process.stdout.write(JSON.stringify(cells) + "\n");
process.exit(0);
