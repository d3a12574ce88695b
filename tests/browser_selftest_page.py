"""
The page tests/test_browser_harness.py proves tests/browser.py on, and the
browser script that drives it.

Test side: ``make_site()`` -> (a twisted.web Site, the CountApi resource). The
page at ``/`` has a button; each click POSTs ``/api/count``, the server counts
it and answers ``{"count": n}``, and the page appends ``n`` to a list.

Script side (run by ``run_browser_script(__file__, url, SCENARIO, ...)``):

- ``click-count``: click twice, wait for the list to read 1, 2, screenshot,
  report the list's texts;
- ``missing-selector``: wait for an element the page never has (a Playwright
  TimeoutError after the step timeout, reported by the harness);
- ``hang``: open the page, then sleep far past any timeout (the harness must
  kill the script, Chromium and all).
"""

from __future__ import annotations

import json
import time

PAGE = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Browser harness self-test</title></head>
<body>
<h1>Counter</h1>
<button id="more" type="button">Count</button>
<ul id="counts"></ul>
<script>
document.getElementById("more").addEventListener("click", async () => {
  const response = await fetch("/api/count", {method: "POST"});
  const body = await response.json();
  const item = document.createElement("li");
  item.textContent = String(body.count);
  document.getElementById("counts").appendChild(item);
  console.log("count " + body.count);
});
</script>
</body>
</html>
"""


def make_site():
    """A twisted.web Site serving the page at / and the counter at /api/count."""
    from twisted.web import pages, resource, server

    class Root(resource.Resource):
        def getChild(self, path, request):
            return pages.notFound()  # /favicon.ico and the like

    class Page(resource.Resource):
        isLeaf = True

        def render_GET(self, request) -> bytes:
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            return PAGE

    class CountApi(resource.Resource):
        isLeaf = True

        def __init__(self) -> None:
            super().__init__()
            self.requests: list[bytes] = []

        def render_POST(self, request) -> bytes:
            self.requests.append(request.method)
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"cache-control", b"no-store")
            return json.dumps({"count": len(self.requests)}).encode()

    api = CountApi()
    root = Root()
    root.putChild(b"", Page())
    api_dir = Root()
    api_dir.putChild(b"count", api)
    root.putChild(b"api", api_dir)
    return server.Site(root), api


# ---------------------------------------------------------------- scenarios


def click_count(run) -> None:
    from playwright.sync_api import expect

    page = run.page
    page.goto(run.url)
    run.report["title"] = page.title()
    button = page.get_by_role("button", name="Count")
    items = page.locator("#counts li")
    button.click()
    expect(items).to_have_text(["1"])
    button.click()
    expect(items).to_have_text(["1", "2"])
    page.locator("#counts li", has_text="2").wait_for(state="visible")
    run.report["texts"] = items.all_inner_texts()
    run.screenshot("counter.png")


def missing_selector(run) -> None:
    run.page.goto(run.url)
    run.page.locator("#never-there").wait_for(state="visible")
    run.report["reached"] = "after the wait"  # never


def hang(run) -> None:
    run.page.goto(run.url)
    print("hanging", flush=True)
    time.sleep(600)


SCENARIOS = {
    "click-count": click_count,
    "missing-selector": missing_selector,
    "hang": hang,
}


def main(run) -> None:
    name = run.args[0] if run.args else "click-count"
    run.report["scenario"] = name
    SCENARIOS[name](run)


if __name__ == "__main__":
    from tests.browser import run_script

    run_script(main)
