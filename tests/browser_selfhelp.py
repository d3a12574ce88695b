"""
Browser script for tests/test_selfhelp_browser.py: a visitor opens
/selfhelp/ with JavaScript on; the page logs in over XMPP/WebSocket as its
guest, chats with the bot (replies pushed), calls the bot over
SIP/WebSocket with a jabber chat offer in the same thread, sees the
greeting, hangs up and sees the goodbye.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import run_script  # noqa: E402


def scenario(run) -> None:
    page = run.page
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    page.on("websocket", lambda ws: sockets.append(ws.url))
    run.report["requests"], run.report["websockets"] = requests, sockets
    page.goto(run.url)
    live = page.locator("#live[data-jid]")
    live.wait_for()
    run.report["jid"] = live.get_attribute("data-jid")
    run.report["thread"] = live.get_attribute("data-thread")

    page.get_by_role("button", name="1 Order status").click()
    reply = page.locator("#log .bot[data-thread]", has_text="has shipped")
    reply.wait_for()
    run.report["reply_thread"] = reply.get_attribute("data-thread")
    page.locator("#say input").fill("2")
    page.get_by_role("button", name="Send").click()
    page.locator("#log .bot[data-thread]", has_text="We are open").wait_for()

    page.get_by_role("button", name="Call us").click()
    page.locator("#call-state[data-state=established]").wait_for()
    run.report["call_thread"] = page.locator("#call-state").get_attribute("data-thread")
    greeting = page.locator("#log .bot[data-thread]", has_text="Welcome to convergence")
    greeting.wait_for()
    run.report["greeting_thread"] = greeting.get_attribute("data-thread")
    page.locator("tr.session", has_text="sip").first.wait_for()
    run.report["rows_in_call"] = page.locator("tr.session").all_inner_texts()
    run.screenshot("selfhelp-live-call.png", full_page=True)

    page.get_by_role("button", name="Hang up").click()
    page.locator("#call-state[data-state=ended]").wait_for()
    goodbye = page.locator("#log .bot[data-thread]", has_text="Goodbye")
    goodbye.wait_for()
    run.report["goodbye_thread"] = goodbye.get_attribute("data-thread")

    # The conversation is over: its guest login ends; the page reconnects
    # with a new one, in a new conversation.
    page.wait_for_function(
        "old => { const live = document.getElementById('live');"
        " return live.dataset.thread !== old && live.textContent.startsWith('Live'); }",
        arg=run.report["thread"])
    run.report["new_jid"] = live.get_attribute("data-jid")
    run.report["new_thread"] = live.get_attribute("data-thread")
    page.get_by_role("button", name="2 Opening hours").click()
    again = page.locator(f"#log .bot[data-thread='{run.report['new_thread']}']",
                         has_text="We are open")
    again.wait_for()
    run.report["log"] = page.locator("#log > div").all_inner_texts()
    run.screenshot("selfhelp-live.png", full_page=True)


if __name__ == "__main__":
    run_script(scenario)
