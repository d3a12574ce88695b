"""
profanity (Debian; C, libstrophe) in tmux: each user is a profanity in its
own tmux server (a socket in the work directory) with its own HOME, so its
own accounts file and settings; keys go in with ``send-keys``, the screen
comes back with ``capture-pane``. The test certificate is trusted through
SSL_CERT_FILE (libstrophe's OpenSSL loads it as a CA), so no ``/tls allow``
is needed; profanity's debug log shows the stream management exchange.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

from tests.clients.runner import (
    PASSWORD,
    Cell,
    Server,
    check,
    execute,
    failed,
    fetch,
    package_version,
    passed,
)

NAME = "profanity"
LIBRARY = "C, libstrophe"
ACCOUNTS = ("prof-a", "prof-b", "prof-c")
PLAIN_ONLY = ""
ROOM = "prof-room@conference.localhost"
CANNOT = {"vcard": "no vCard command in 0.13 (/vcard came with 0.14)"}


def missing() -> str:
    for program in ("profanity", "tmux"):
        if not shutil.which(program):
            return f"{program} not on PATH"
    return ""


def version() -> str:
    _, out = execute(["profanity", "--version"], dict(os.environ), limit=10)
    m = re.search(r"Profanity, version (\S+)", out)
    lib = package_version("libstrophe0").replace("(Debian", "(libstrophe Debian")
    return (m.group(1) if m else "unknown") + package_version("profanity") + lib


class Profanity:
    """One profanity in its own tmux server and HOME."""

    def __init__(self, server: Server, local: str) -> None:
        self.server = server
        self.jid = server.jid(local)
        self.home = server.scratch("profanity") / local
        data = self.home / ".local" / "share" / "profanity"
        config = self.home / ".config" / "profanity"
        data.mkdir(parents=True, exist_ok=True)
        config.mkdir(parents=True, exist_ok=True)
        (data / "accounts").write_text(
            f"[{self.jid}]\nenabled=true\njid={self.jid}\nserver=127.0.0.1\n"
            f"port={server.c2s_port}\nresource=profanity\npassword={PASSWORD}\n"
            "tls.policy=force\n")
        (data / "accounts").chmod(0o600)
        self.log = data / "logs" / "profanity.log"
        self.socket = str(self.home / "tmux.sock")
        env = server.env(HOME=str(self.home), TERM="xterm-256color", LANG="C.UTF-8")
        env.pop("TMUX", None)
        self.env = env
        self._tmux("new-session", "-d", "-s", "p", "-x", "250", "-y", "60",
                   f"profanity -l DEBUG -a {self.jid}")

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, *args], env=self.env,
                              capture_output=True, text=True, timeout=10, check=False)
        return done.stdout

    def type(self, line: str) -> None:
        self._tmux("send-keys", "-t", "p", "-l", line)
        self._tmux("send-keys", "-t", "p", "Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-t", "p", "-S", "-500")

    def wait(self, pattern: str, limit: float = 8.0) -> re.Match | None:
        deadline = time.monotonic() + limit
        regex = re.compile(pattern)
        while True:
            m = regex.search(self.screen())
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.1)

    def debug_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        try:
            self.type("/quit")
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and "p" in self._tmux("list-sessions", "-F", "#S"):
                time.sleep(0.1)
        finally:
            subprocess.run(["tmux", "-S", self.socket, "kill-server"], env=self.env,
                           capture_output=True, timeout=10, check=False)


def show_window(user: Profanity, number: int, pattern: str, limit: float = 8.0) -> bool:
    """Switch to window C{number} until C{pattern} is on its screen (the
    window may open only when a message arrives)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        user.type(f"/win {number}")
        if user.wait(pattern, 1):
            return True
    return False


def logged_in(user: Profanity) -> bool:
    return user.wait(re.escape(f"{user.jid}/profanity logged in successfully"), 15) is not None


def roster(a: Profanity, b: Profanity) -> Cell:
    a.type("/roster")
    if not a.wait(r"Roster: jid \(nick\) - subscription - groups"):
        return failed("/roster printed no roster")
    a.type(f"/roster add {b.jid} Bob")
    a.type(f"/sub request {b.jid}")
    if not b.wait(re.escape(f"Received authorization request from {a.jid}")):
        return failed("no authorization request shown at B")
    b.type(f"/sub allow {a.jid}")
    b.type(f"/sub request {a.jid}")
    if not a.wait(re.escape(f"Received authorization request from {b.jid}")):
        return failed("no authorization request shown at A")
    a.type(f"/sub allow {b.jid}")
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        a.type(f"/sub show {b.jid}")
        if a.wait(re.escape(b.jid) + r" subscription status: both", 1):
            return passed("/roster, /roster add, /sub request and /sub allow both ways;"
                          " /sub show: both")
    return failed("subscription never both: " + a.screen()[-300:])


def presence(a: Profanity, b: Profanity) -> Cell:
    b.type("/presence console all")
    a.type('/status set dnd "profanity busy"')
    m = b.wait(re.escape(a.jid) + r'.{0,40}(dnd|do not disturb).{0,20}profanity busy', 8)
    a.type("/status set online")
    return check(m is not None, "a /status change shown in the contact's console",
                 "A's dnd status never shown at B")


def chat(a: Profanity, b: Profanity) -> Cell:
    a.type(f"/msg {b.jid} profanity hello from a")
    got_b = show_window(b, 2, r"profanity hello from a")
    b.type("profanity hello from b")
    got_a = a.wait(r"profanity hello from b")
    a.type("/win 1")
    b.type("/win 1")
    return check(bool(got_a and got_b), "/msg, a reply in the chat window; both shown",
                 f"shown at B: {bool(got_b)}, at A: {bool(got_a)}")


def offline(server: Server, a: Profanity) -> Cell:
    text = "profanity while you were out"
    c_jid = server.jid("prof-c")
    a.type(f"/msg {c_jid} {text}")
    a.type("/win 1")
    if not server.wait_stored("prof-c"):
        return failed("the message was never stored for the logged-out user")
    c = Profanity(server, "prof-c")
    try:
        if not logged_in(c):
            return failed("prof-c did not log in")
        got = show_window(c, 2, re.escape(text))
    finally:
        c.stop()
    return check(got is not None, "shown in a chat window at the next login",
                 "not shown at the next login")


def muc(a: Profanity, b: Profanity) -> Cell:
    error = re.escape(f"Error from {ROOM}/") + r"\S+: \S+"
    joined = r"-> You have joined the room|" + error
    a.type(f"/join {ROOM} nick aprof")
    first = a.wait(joined, 5)
    if not first or first.group(0).startswith("Error"):
        return failed(first.group(0) if first else "no join shown")
    note = "/join for both"
    if a.wait(r"Room locked, requires configuration\.", 1):
        a.type("/room accept")  # the creator takes the default configuration
        if not a.wait(r"Room unlocked\.", 5):
            return failed("/room accept: the room stayed locked")
        note = "/join (the creator's room unlocked with /room accept) for both"
    b.type(f"/join {ROOM} nick bprof")
    second = b.wait(joined, 5)
    if not second or second.group(0).startswith("Error"):
        return failed("second join: " + (second.group(0) if second else "no join shown"))
    a.type("profanity to the room")
    got = b.wait(r"aprof: profanity to the room", 5)
    a.type("/win 1")
    b.type("/win 1")
    return check(got is not None, f"{note}, a groupchat message seen by the other",
                 "groupchat not shown at B")


def carbons(a: Profanity) -> Cell:
    m = a.wait(r"Server error enabling message carbons: \S+", 1)
    if m:
        return failed(m.group(0))
    enabled = re.search(r"<enable xmlns=\"urn:xmpp:carbons:2\"", a.debug_log())
    return check(enabled is not None, "enabled at login (carbons on by default), no error",
                 "never asked for carbons")


def mam(a: Profanity, b: Profanity) -> Cell:
    """/mam on, then a chat window opened anew asks the archive for its history."""
    before = len(a.debug_log())
    a.type("/close all")
    a.type("/mam on")
    a.type(f"/msg {b.jid}")
    problem = r"(Server doesn't support MAM[^\n]*|MAM Error: [^\n]*)"
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        m = a.wait(problem, 0.2)
        if m:
            a.type("/win 1")
            return failed(m.group(0))
        log = a.debug_log()[before:]
        if re.search(r"<fin[^>]*urn:xmpp:mam:2", log):
            a.type("/win 1")
            results = len(re.findall(r"<result[^>]*urn:xmpp:mam:2", log))
            return passed(f"/mam on; a new chat window asked the archive: {results} results,"
                          " the query finished")
    a.type("/win 1")
    log = a.debug_log()[before:]
    if "Server doesn't advertise urn:xmpp:mam:2 feature" in log:
        # profanity looks for the feature in the domain's disco#info (and its
        # items), not in the account's bare JID where XEP-0313 puts it
        return failed("no query sent: profanity found no urn:xmpp:mam:2 in the disco#info"
                      " of the server's domain (its debug log: \"Server doesn't advertise"
                      " urn:xmpp:mam:2 feature\")")
    if "urn:xmpp:mam:2" not in log:
        return failed("no MAM query sent")
    return failed("the MAM query was not answered")


def upload(server: Server, a: Profanity, b: Profanity) -> Cell:
    path = server.scratch("profanity") / "prof-upload.txt"
    payload = b"uploaded by profanity\n" * 30
    path.write_bytes(payload)
    a.type(f"/msg {b.jid}")
    a.type(f"/sendfile {path}")
    sent = a.wait(r"(Uploading '[^\n]*' failed: [^\n]*|http://\S+/prof-upload\.txt)", 10)
    a.type("/win 1")
    if not sent or "failed" in sent.group(0):
        return failed(sent.group(0) if sent else "no upload shown")
    url = sent.group(0)
    seen = show_window(b, 2, re.escape(url), 5)
    b.type("/win 1")
    body = fetch(url)
    return check(bool(seen) and body == payload,
                 f"/sendfile: {len(payload)} bytes PUT, URL shown at the contact, GET identical",
                 f"URL at B: {bool(seen)}, GET {len(body)} bytes")


def sm(a: Profanity) -> Cell:
    log = a.debug_log()
    if "<enabled" in log and "urn:xmpp:sm:3" in log:
        return passed("libstrophe enabled stream management at login")
    if "urn:xmpp:sm:3" not in log:
        return failed("the server offered no stream management")
    return failed("stream management not enabled")


def run(server: Server) -> dict[str, Cell]:
    a = Profanity(server, "prof-a")
    b = Profanity(server, "prof-b")
    try:
        if not (logged_in(a) and logged_in(b)):
            return {"chat": failed("login not shown: " + a.screen()[-300:])}
        cells = {"roster": roster(a, b), "presence": presence(a, b), "chat": chat(a, b)}
        cells["offline"] = offline(server, a)
        cells["upload"] = upload(server, a, b)
        cells["mam"] = mam(a, b)
        cells["muc"] = muc(a, b)
        # last: by now an answer to the carbons request at login has long come
        a.type("/win 1")
        cells["carbons"] = carbons(a)
        cells["sm"] = sm(a)
        return cells
    finally:
        a.stop()
        b.stop()
