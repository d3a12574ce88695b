// SIP.js over SIP/WebSocket (RFC 7118) against a real server
// (tests/test_sipjs_ws.py drives it).
//
//   node sipws.mjs WS_URL DOMAIN USER PASSWORD APP [SCENARIO]
//
// SCENARIO "full" (the default) is all of the below; "call" only connects
// and calls APP (no REGISTER, no incoming INVITE), e.g. the selfhelp bot.
//
// Prints one JSON object a line, {"event": ...}, as things happen:
//   registered    REGISTER over the WebSocket got its 200 (digest);
//   invite        an INVITE came down the connection (the test makes an
//                 app place it); it is answered 200 with a chat answer;
//   ended         the other side's BYE ended that call;
//   proxied       a second INVITE (a UDP phone's, through the server's
//                 proxy) was answered and ACKed, and our BYE to the phone
//                 got this status;
//   call          our own INVITE to APP (a chat offer, draft-sparks) was
//                 answered; then we send BYE;
//   hungup        the BYE got its answer;
//   closed        the WebSocket was closed without un-REGISTERing.
// Between "registered" and "invite" it waits for the test. Every wait is
// bounded; an error prints {"event": "error"} and exits 1.
//
// No WebRTC: the sessions are chat sessions (m=message ... xmpp/tcp chat,
// docs/sdp.md), so the SessionDescriptionHandler is a small one of ours.
import { WebSocket } from "ws";
import { Inviter, Registerer, RegistererState, SessionState, UserAgent } from "sip.js";

// SIP.js opens `new WebSocket(url, "sip")`; Node 20 has no global one.
globalThis.WebSocket = WebSocket;

const [url, domain, user, password, app, scenario = "full"] = process.argv.slice(2);
const STEP = 10000;
const say = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));
const die = (error) => { say("error", { message: String(error && error.stack || error) }); process.exit(1); };
process.on("unhandledRejection", die);
const watchdog = setTimeout(() => die("the scenario took over 60 s"), 60000);

function within(promise, what, ms = STEP) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(timer));
}

const jid = `${user}@${domain}/sipjs`;

// Answer each stream of an offer: accept the chat (our JID, its thread),
// decline the others (port 0), in the offer's order (RFC 3264 section 6).
function answerTo(offer) {
  const lines = ["v=0", `o=${user} 1 1 IN IP4 127.0.0.1`, "s=-", "c=IN IP4 127.0.0.1", "t=0 0"];
  const thread = (offer.match(/^a=thread:(.+)$/m) || [])[1];
  for (const m of offer.split(/\r?\n/).filter((l) => l.startsWith("m="))) {
    const [media, , proto, ...formats] = m.slice(2).split(" ");
    if (media === "message" && proto === "xmpp/tcp") {
      lines.push(`m=message 5222 xmpp/tcp ${formats.join(" ")}`, `a=jid:${jid}`);
      if (thread) lines.push(`a=thread:${thread}`);
    } else {
      lines.push(`m=${media} 0 ${proto} ${formats.join(" ")}`);
    }
  }
  return lines.join("\r\n") + "\r\n";
}

function chatOffer(thread) {
  return ["v=0", `o=${user} 2 2 IN IP4 127.0.0.1`, "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
          "m=message 5222 xmpp/tcp chat", `a=jid:${jid}`, `a=thread:${thread}`].join("\r\n") + "\r\n";
}

class ChatDescriptionHandler {
  constructor() { this.remote = null; this.offerSent = null; }
  close() {}
  hasDescription(contentType) { return contentType === "application/sdp"; }
  async setDescription(sdp) { this.remote = sdp; }
  async getDescription() {
    const body = this.remote ? answerTo(this.remote) : (this.offerSent = chatOffer("sipjs-" + Date.now()));
    return { body, contentType: "application/sdp" };
  }
  async rollbackDescription() {}
  sendDtmf() { return false; }
}

// Incoming INVITEs, in order; nextInvitation() waits for the next one.
const invitations = [];
let waiting = null;
function incoming(invitation) {
  if (waiting) { const w = waiting; waiting = null; w(invitation); } else invitations.push(invitation);
}
function nextInvitation() {
  if (invitations.length) return Promise.resolve(invitations.shift());
  return new Promise((resolve) => { waiting = resolve; });
}

const ua = new UserAgent({
  uri: UserAgent.makeURI(`sip:${user}@${domain}`),
  transportOptions: { server: url, traceSip: !!process.env.SIPJS_TRACE },
  authorizationUsername: user,
  authorizationPassword: password,
  logBuiltinEnabled: !!process.env.SIPJS_TRACE,
  sessionDescriptionHandlerFactory: () => new ChatDescriptionHandler(),
  delegate: { onInvite: (invitation) => incoming(invitation) },
});

function stateReached(session, wanted, what) {
  if (session.state === wanted) return Promise.resolve();
  return within(new Promise((resolve) => {
    session.stateChange.addListener((state) => { if (state === wanted) resolve(); });
  }), what);
}

// 1. REGISTER, then an INVITE routed to our WS contact (the test has an app
// place it): answered with a chat answer, ended by the caller's BYE.
async function incomingCall() {
  const registerer = new Registerer(ua, { expires: 300 });
  const registered = within(new Promise((resolve, reject) => {
    registerer.stateChange.addListener((state) => {
      if (state === RegistererState.Registered) resolve();
      if (state === RegistererState.Terminated) reject(new Error("registration terminated"));
    });
  }), "REGISTER");
  await registerer.register({
    requestDelegate: { onReject: (r) => die(`REGISTER rejected: ${r.message.statusCode}`) },
  });
  await registered;
  say("registered", { contact: String(ua.contact.uri) });

  const invitation = await within(nextInvitation(), "INVITE to our WebSocket contact", 30000);
  const request = invitation.request;
  say("invite", {
    ruri: String(request.ruri), from: String(request.from.uri),
    via: request.getHeader("via"), contact: request.getHeader("contact"),
    offer: request.body,
  });
  await invitation.accept();
  await stateReached(invitation, SessionState.Established, "ACK for our 200");
  await stateReached(invitation, SessionState.Terminated, "BYE from the caller");
  say("ended");

  // A phone calls us through the proxy (Record-Route); we answer and hang up.
  const proxied = await within(nextInvitation(), "INVITE through the proxy", 30000);
  await proxied.accept();
  await stateReached(proxied, SessionState.Established, "the phone's ACK");
  const answered = new Promise((resolve) => {
    proxied.bye({ requestDelegate: { onAccept: (r) => resolve(r.message.statusCode),
                                     onReject: (r) => resolve(r.message.statusCode) } });
  });
  say("proxied", { status: await within(answered, "answer to our BYE to the phone"),
                   recordRoute: proxied.request.getHeaders("record-route") });
}

await within(ua.start(), "WebSocket connect");
if (scenario === "full") await incomingCall();

// 2. Our own call to the app, with a chat offer; we hang up.
const inviter = new Inviter(ua, UserAgent.makeURI(`sip:${app}@${domain}`));
let answer = null;
await inviter.invite({
  requestDelegate: {
    onAccept: (response) => { answer = response.message; },
    onReject: (response) => die(`INVITE to ${app} rejected: ${response.message.statusCode}`),
  },
});
await stateReached(inviter, SessionState.Established, `200 from ${app}`);
say("call", { status: answer.statusCode, answer: answer.body,
              contact: answer.getHeader("contact"), offer: inviter.sessionDescriptionHandler.offerSent });
const byeAnswered = new Promise((resolve) => {
  inviter.bye({ requestDelegate: { onAccept: (r) => resolve(r.message.statusCode),
                                   onReject: (r) => resolve(r.message.statusCode) } });
});
say("hungup", { status: await within(byeAnswered, "answer to our BYE") });

// 3. Close the connection without un-REGISTERing: the server must drop
// the registration itself.
await within(ua.transport.disconnect(), "WebSocket close");
say("closed");
clearTimeout(watchdog);
process.exit(0);
