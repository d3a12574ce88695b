"""
Browser script for tests/test_selfhelp_browser.py: a visitor opens
/selfhelp/, uses the menu and sees their conversation in the live list.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import run_script  # noqa: E402


def scenario(run) -> None:
    page = run.page
    page.goto(run.url)
    page.get_by_text("Welcome to convergence self-help").wait_for()
    run.report["sessions_before"] = page.locator("tr.session").count()
    page.get_by_role("button", name="1 Order status").click()
    page.get_by_text("has shipped").wait_for()
    page.locator("tr.session", has_text="web visitor").first.wait_for()
    run.report["log"] = page.locator("#log").inner_text()
    run.report["rows"] = page.locator("tr.session").all_inner_texts()
    run.screenshot("selfhelp.png")


if __name__ == "__main__":
    run_script(scenario)
