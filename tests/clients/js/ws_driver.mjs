// @xmpp/client over WebSocket (RFC 7395), driven line by line by
// tests/xmppjs_websocket.py:
//
//   node --experimental-websocket ws_driver.mjs URL DOMAIN USER PASSWORD
//
// Prints one JSON object per event on stdout: online (with the bound JID
// and the stream management id), message, disconnected, resumed, error.
// Commands on stdin: "send <to> <body>", "drop" (the WebSocket is closed
// under the session, which the library then resumes), "quit".
import { client, xml } from "@xmpp/client";
import { createInterface } from "node:readline";

process.on("unhandledRejection", () => {});

const [url, domain, username, password] = process.argv.slice(2);
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");

const xmpp = client({ service: url, domain, username, password, resource: "web" });
// leave the server time to notice the drop and hibernate the session
xmpp.reconnect.delay = 1500;
xmpp.on("error", (e) => say({ event: "error", error: String(e && (e.condition || e.message) || e) }));
xmpp.on("disconnect", () => say({ event: "disconnected" }));
xmpp.streamManagement.on("resumed", () => say({
  event: "resumed", jid: String(xmpp.jid), sm: xmpp.streamManagement.id }));
xmpp.on("stanza", (stanza) => {
  if (stanza.is("message") && stanza.getChildText("body") !== null) {
    say({ event: "message", from: stanza.attrs.from, body: stanza.getChildText("body") });
  }
});
xmpp.on("online", async (jid) => {
  await xmpp.send(xml("presence"));
  // the stream management id arrives with <enabled/>, right after binding
  for (let i = 0; i < 100 && !xmpp.streamManagement.id; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  say({ event: "online", jid: String(jid), sm: xmpp.streamManagement.id,
        secure: xmpp.socket && xmpp.socket.secure });
});

createInterface({ input: process.stdin }).on("line", async (line) => {
  const [command, to, ...rest] = line.trim().split(" ");
  try {
    if (command === "send") {
      await xmpp.send(xml("message", { to, type: "chat" }, xml("body", {}, rest.join(" "))));
    } else if (command === "drop") {
      xmpp.socket.socket.close(4000, "test drop");
    } else if (command === "quit") {
      await xmpp.stop();
      process.exit(0);
    }
  } catch (e) {
    say({ event: "error", error: String(e && e.message || e) });
  }
});

setTimeout(() => { say({ event: "error", error: "driver timeout" }); process.exit(2); }, 60000);
xmpp.start().catch((e) => { say({ event: "error", error: String(e && (e.condition || e.message) || e) }); process.exit(1); });
