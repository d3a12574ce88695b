"""
Browser script for tests/test_selfhelp_browser.py: the page with
JavaScript off is an HTML form; each choice posts and the answer shows
in the transcript of the page it redirects to.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import run_script  # noqa: E402


def scenario(run) -> None:
    page = run.page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    run.report["requests"] = requests
    page.goto(run.url)
    page.get_by_text("Welcome to convergence self-help").wait_for()
    run.report["call_visible"] = page.locator("#call").is_visible()
    page.get_by_role("button", name="1 Order status").click()
    page.get_by_text("has shipped").wait_for()
    page.locator("#say input").fill("2")
    page.get_by_role("button", name="Send").click()
    page.get_by_text("We are open").wait_for()
    run.report["log"] = page.locator("#log > div").all_inner_texts()
    run.report["status"] = page.locator("#live").inner_text()
    run.screenshot("selfhelp-nojs.png", full_page=True)


if __name__ == "__main__":
    run_script(scenario)
