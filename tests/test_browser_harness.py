"""
tests/browser.py proven on a page of its own (tests/browser_selftest_page.py),
served by twisted.web in the test's own reactor while headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright in a subprocess) uses it.

Chromium missing is a failure, not a skip: `make test` installs it (`make browser`).
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests import browser, browser_selftest_page
from tests.browser import (
    ChromiumMissing,
    assert_browser_ok,
    chromium_path,
    explain,
    run_browser_script,
    serve_site,
)

SCRIPT = Path(browser_selftest_page.__file__)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (Chromium gets its profile dir there)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


class BrowserHarnessTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.site, self.api = browser_selftest_page.make_site()
        self.base = serve_site(self, self.site)

    async def test_click_twice_counts_on_the_server_and_shows_it(self) -> None:
        workdir = self.mktemp()
        result = await run_browser_script(
            SCRIPT, self.base + "/", "click-count", timeout=30, workdir=workdir
        )
        assert_browser_ok(result)
        self.assertFalse(result["group_left_running"])
        self.assertEqual(result["scenario"], "click-count")
        self.assertEqual(result["title"], "Browser harness self-test")
        self.assertEqual(result["texts"], ["1", "2"])
        self.assertEqual(self.api.requests, [b"POST", b"POST"])
        self.assertEqual(result["page_errors"], [])
        self.assertEqual(result["console"], ["log: count 1", "log: count 2"])
        self.assertRegex(result["browser_version"], r"^(Headless)?Chrome/\d+\.")
        self.assertIn("HeadlessChrome/", result["user_agent"])
        [shot] = result["screenshots"]
        self.assertEqual(Path(shot).parent, Path(workdir).resolve())
        data = Path(shot).read_bytes()
        self.assertTrue(data.startswith(PNG_MAGIC), explain(result))
        self.assertGreater(len(data), 1000)
        # the fresh profile is removed when the script ends
        self.assertEqual([p.name for p in Path(workdir).iterdir()], ["counter.png"])

    async def test_missing_selector_reports_a_timeout_fast(self) -> None:
        workdir = self.mktemp()
        result = await run_browser_script(
            SCRIPT, self.base + "/", "missing-selector",
            timeout=20, step_timeout=1.5, workdir=workdir,
        )
        self.assertFalse(result["ok"], explain(result))
        self.assertEqual(result["error_type"], "TimeoutError", explain(result))
        self.assertIn("#never-there", result["error"])
        self.assertIn("1500ms", result["error"])
        self.assertNotIn("reached", result)
        self.assertEqual(result["exit_code"], 1)
        self.assertLess(result["elapsed"], 12)
        self.assertTrue(result["url"].startswith(self.base), explain(result))
        # a screenshot of the page as it failed
        [shot] = result["screenshots"]
        self.assertTrue(shot.endswith("failure.png"))
        self.assertTrue(Path(shot).read_bytes().startswith(PNG_MAGIC))
        with self.assertRaises(AssertionError) as caught:
            assert_browser_ok(result)
        self.assertIn("TimeoutError", str(caught.exception))

    async def test_hung_script_is_killed_with_its_browser(self) -> None:
        workdir = Path(self.mktemp()).resolve()
        result = await run_browser_script(
            SCRIPT, self.base + "/", "hang", timeout=4, step_timeout=2, workdir=workdir
        )
        self.assertFalse(result["ok"])
        self.assertEqual(result["error_type"], "HarnessTimeout", explain(result))
        self.assertIn("hanging", result["stdout"])
        self.assertLess(result["elapsed"], 4 + browser.KILL_GRACE + 3)
        # the script's process group (Playwright's driver, Chromium) is gone
        self.assertFalse(result["group_left_running"])
        with self.assertRaises(ProcessLookupError):
            os.killpg(result["pid"], 0)
        self.assertEqual(_processes_mentioning(str(workdir)), [])


class ChromiumMissingTests(SynchronousTestCase):
    def test_present(self) -> None:
        self.assertEqual(chromium_path(), "/usr/bin/chromium")

    def test_missing_is_a_failure_naming_make_browser(self) -> None:
        self.patch(browser, "CHROMIUM", "/nonexistent/chromium")
        with self.assertRaises(ChromiumMissing) as caught:
            chromium_path()
        self.assertIsInstance(caught.exception, AssertionError)
        self.assertIn("run `make browser`", str(caught.exception))
        self.assertRaises(
            ChromiumMissing, run_browser_script, SCRIPT, "http://127.0.0.1:1/"
        )


class ReportTests(SynchronousTestCase):
    def _report(self, stdout: str, **kw):
        args = dict(exit_code=0, signal_=None, killed_after=None, elapsed=1.0,
                    pid=1, workdir=Path("/tmp"), argv=["x"])
        args.update(kw)
        return browser._make_report(stdout, "boom on stderr", **args)

    def test_no_report_is_a_failure(self) -> None:
        result = self._report("just noise", exit_code=1)
        self.assertFalse(result["ok"])
        self.assertEqual(result["error_type"], "NoReport")
        self.assertIn("boom on stderr", explain(result))

    def test_report_is_read_from_the_marker_line(self) -> None:
        line = browser.RESULT_MARKER + '{"ok": true, "texts": ["a"]}'
        result = self._report("noise\n" + line + "\n")
        self.assertTrue(result["ok"])
        self.assertEqual(result["texts"], ["a"])
        self.assertEqual(result["stdout"], "noise")

    def test_success_with_a_bad_exit_code_is_a_failure(self) -> None:
        line = browser.RESULT_MARKER + '{"ok": true}'
        result = self._report(line, exit_code=3)
        self.assertFalse(result["ok"])
        self.assertEqual(result["error_type"], "ExitCode")
