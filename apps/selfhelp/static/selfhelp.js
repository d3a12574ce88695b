// The selfhelp page, live (docs/selfhelp.md). Without this script the page
// is an HTML form that posts each choice; with it:
//  - the chat is an XMPP session over WebSocket (@xmpp/client, the global
//    XMPP), logged in as this web session's guest with a one-time token
//    from api/live; the bot's and agents' replies are pushed down it;
//  - "Call us" places a SIP call over WebSocket (SIP.js, the global SIP)
//    to the bot, offering a jabber chat (m=message ... xmpp/tcp chat) in
//    the same thread, so the call's chat is this conversation;
//  - the list of conversations is fetched again on every event (no timer).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const liveStatus = $("live");
  const callState = $("call-state");
  const NAMES = { bot: "Bot", agent: "Agent", customer: "You", note: "" };
  let info = null;      // api/live: guest JID, token, thread, paths
  let xmpp = null;      // the @xmpp/client entity once started
  let online = false;
  let ua = null;        // SIP.js UserAgent of a call
  let inviter = null;   // SIP.js Inviter of a call

  function line(who, text, thread) {
    const div = document.createElement("div");
    div.className = who;
    if (thread) div.dataset.thread = thread;
    div.textContent = (NAMES[who] ? NAMES[who] + ": " : "") + text;
    log.appendChild(div);
    div.scrollIntoView({ block: "nearest" });
  }

  function showTranscript(data) {
    log.textContent = "";
    line("bot", data.greeting);
    for (const entry of data.transcript) line(entry.from, entry.text);
  }

  async function post(path, body) {
    const r = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  // XMPP over WebSocket as the guest of this web session
  async function startChat() {
    info = await post("api/live", {});
    showTranscript(info);
    const { client, xml } = window.XMPP;
    let first = true;
    xmpp = client({
      service: wsUrl(info.xmpp_websocket),
      domain: info.domain,
      resource: "web",
      // SASL PLAIN with a one-time token; a reconnect asks for a new one
      // (after the conversation ended, that is a new guest in a new thread)
      credentials: async (authenticate) => {
        if (!first) {
          const before = info.thread;
          try {
            info = await post("api/live", {});
          } catch (error) {  // no new login: stop trying, the form still works
            xmpp.reconnect.stop();
            liveStatus.textContent = `Live chat ended (${error}); the menu still works.`;
            throw error;
          }
          if (info.thread !== before) line("note", `A new conversation begins (thread ${info.thread}).`);
        }
        first = false;
        await authenticate({ username: info.jid.split("@")[0], password: info.token }, "PLAIN");
      },
    });
    xmpp.on("online", async (address) => {
      online = true;
      await xmpp.send(xml("presence"));
      liveStatus.textContent = `Live: ${address} (XMPP over WebSocket), thread ${info.thread}`;
      liveStatus.dataset.jid = String(address);
      liveStatus.dataset.thread = info.thread;
      $("call").hidden = false;
      refreshSessions();
    });
    xmpp.on("offline", () => { online = false; liveStatus.textContent = "Live chat offline."; });
    xmpp.on("error", (error) => { liveStatus.dataset.error = String(error); });
    xmpp.on("stanza", (stanza) => {
      if (!stanza.is("message") || stanza.attrs.type === "error") return;
      const body = stanza.getChildText("body");
      if (body == null || (stanza.attrs.from || "").split("/")[0] !== info.bot) return;
      const thread = stanza.getChildText("thread");
      if (body.startsWith("Agent: ")) line("agent", body.slice(7), thread);
      else line("bot", body, thread);
      refreshSessions();
    });
    await xmpp.start();
  }

  function sendChat(text) {
    const { xml } = window.XMPP;
    line("customer", text, info.thread);
    return xmpp.send(xml("message", { to: info.bot, type: "chat" },
      xml("body", {}, text), xml("thread", {}, info.thread)));
  }

  async function choose(text) {
    if (online) {
      await sendChat(text);
      return;
    }
    const data = await post("api/menu", { choice: text });  // no live session: as before
    line("customer", text);
    if (data.reply) line("bot", data.reply);
    refreshSessions();
  }

  // A SIP call over WebSocket offering a jabber chat in this conversation
  class ChatOffer {
    constructor(jid, thread) { this.jid = jid; this.thread = thread; this.remote = null; }
    close() {}
    hasDescription(type) { return type === "application/sdp"; }
    async setDescription(sdp) { this.remote = sdp; }
    async getDescription() {
      const body = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
        "m=message 5222 xmpp/tcp chat", `a=jid:${this.jid}`, `a=thread:${this.thread}`]
        .join("\r\n") + "\r\n";
      return { body, contentType: "application/sdp" };
    }
    async rollbackDescription() {}
    sendDtmf() { return false; }
  }

  function setCall(state, text) {
    callState.textContent = text;
    callState.dataset.state = state;
    const active = state === "calling" || state === "established";
    $("call-button").hidden = active;
    $("hangup").hidden = !active;
    refreshSessions();
  }

  async function call() {
    const { UserAgent, Inviter, SessionState } = window.SIP;
    const jid = liveStatus.dataset.jid;
    ua = new UserAgent({
      uri: UserAgent.makeURI(`sip:${info.jid}`),
      transportOptions: { server: wsUrl(info.sip_websocket) },
      logBuiltinEnabled: false,
      sessionDescriptionHandlerFactory: () => new ChatOffer(jid, info.thread),
    });
    setCall("calling", "Calling…");
    line("note", `Calling ${info.sip_uri} over SIP/WebSocket, with a chat in this thread…`);
    await ua.start();
    inviter = new Inviter(ua, UserAgent.makeURI(info.sip_uri));
    inviter.stateChange.addListener((state) => {
      if (state === SessionState.Established) {
        const answer = inviter.sessionDescriptionHandler.remote || "";
        const thread = (answer.match(/^a=thread:(.+)$/m) || [])[1] || "";
        callState.dataset.thread = thread.trim();
        setCall("established", `In a call; its chat is thread ${thread.trim()}`);
        line("note", "Call connected: the bot chats with you here.", thread.trim());
      } else if (state === SessionState.Terminated) {
        setCall("ended", "Call ended.");
        line("note", "Call ended.");
        const agent = ua;
        ua = inviter = null;
        agent.stop().catch(() => {});
      }
    });
    await inviter.invite({
      requestDelegate: {
        onReject: (r) => setCall("rejected", `Call refused: ${r.message.statusCode} ${r.message.reasonPhrase}`),
      },
    });
  }

  function hangup() {
    if (!inviter) return;
    const { SessionState } = window.SIP;
    if (inviter.state === SessionState.Established) inviter.bye();
    else inviter.cancel();
  }

  async function refreshSessions() {
    const r = await fetch("api/sessions", { credentials: "same-origin" });
    const data = await r.json();
    const body = $("sessions");
    body.textContent = "";
    if (!data.sessions.length) {
      body.innerHTML = "<tr><td colspan='3'>none yet</td></tr>";
      return;
    }
    for (const s of data.sessions) {
      const tr = document.createElement("tr");
      tr.className = "session";
      tr.dataset.id = s.id;
      const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
      tr.append(cell(s.channel), cell(s.customer || "web visitor"));
      const parts = document.createElement("td");
      for (const p of s.protocol_sessions) {
        const div = document.createElement("div");
        const kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = p.kind;
        div.append(kind, ` ${p.peer} (${p.state})`);
        parts.append(div);
      }
      tr.append(parts);
      body.appendChild(tr);
    }
  }

  // The forms post without JavaScript; here they go over the live session.
  $("menu").addEventListener("submit", (e) => {
    e.preventDefault();
    const choice = e.submitter && e.submitter.value;
    if (choice) choose(choice);
  });
  $("say").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = e.target.elements.choice;
    const text = input.value.trim();
    input.value = "";
    if (text) choose(text);
  });
  $("call-button").addEventListener("click", () => {
    call().catch((error) => setCall("failed", `Call failed: ${error}`));
  });
  $("hangup").addEventListener("click", hangup);

  liveStatus.textContent = "Connecting the live chat…";
  refreshSessions();
  if (window.XMPP) {
    startChat().catch((error) => {
      liveStatus.textContent = `Live chat unavailable (${error}); the menu still works.`;
    });
  }
})();
