"""
Drive headless Chromium (Debian's ``/usr/bin/chromium``) from tests, with
Playwright's Python package (the ``test`` extra) as the driver.

A browser test's server runs in the test's own Twisted reactor, so the browser
must never block that reactor: the Playwright script runs in a SUBPROCESS while
the reactor goes on serving, and prints one JSON report of what it observed.

The test side (a trial ``TestCase``, ``async def`` test)::

    site = server.Site(root)                       # the page under test
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    self.addCleanup(port.stopListening)
    url = f"http://127.0.0.1:{port.getHost().port}/selfhelp/"
    result = await run_browser_script(SCRIPT, url, "some-arg", timeout=30,
                                      workdir=self.mktemp())
    assert_browser_ok(result)
    self.assertEqual(result["texts"], ["1", "2"])

The script side (``SCRIPT``, a file of its own; ``run_script`` launches
Chromium, opens one page, calls ``scenario`` and prints the report)::

    from tests.browser import run_script

    def scenario(run):                 # run: BrowserRun
        run.page.goto(run.url)
        run.page.get_by_role("button", name="Count").click()
        run.report["texts"] = run.page.locator("li").all_inner_texts()
        run.screenshot("after.png")

    if __name__ == "__main__":
        run_script(scenario)

Every Playwright wait in the script uses ``run.timeout_ms`` (``step_timeout``
seconds on the test side) unless it passes its own ``timeout=``; the whole
script is killed (its process group: Playwright's driver and Chromium too)
after ``timeout`` seconds. Either way the Deferred fires with a report whose
``ok`` is False and whose ``error_type`` says why (``TimeoutError`` for a
Playwright wait, ``HarnessTimeout`` for the kill), so a broken page fails fast.

Chromium missing is a FAILURE (``ChromiumMissing``, an AssertionError), never a
skip: ``make test`` installs it (``make browser``). We never run ``playwright
install`` (it downloads a browser, which fails here). docs/browser-testing.md
says more.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Debian's launcher script (package ``chromium``); it execs /usr/lib/chromium/chromium
CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = (
    "run `make browser` (it installs Debian's chromium and chromium-driver), "
    "or `apt-get install chromium chromium-driver`"
)
#: what Chromium needs on these machines: as root (no sandbox), no GPU, and no
#: background connections (the closed network refuses them, many at a time)
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: the line prefix the script prints its JSON report after (stdout)
RESULT_MARKER = "@@BROWSER-RESULT@@ "
#: environment variables the harness passes to the script
ENV_STEP_TIMEOUT_MS = "CONVERGENCE_BROWSER_STEP_TIMEOUT_MS"
ENV_WORKDIR = "CONVERGENCE_BROWSER_WORKDIR"
#: "0": the page runs with JavaScript off (the browser context's javaScriptEnabled)
ENV_JAVASCRIPT = "CONVERGENCE_BROWSER_JAVASCRIPT"
#: seconds between SIGTERM and SIGKILL when the harness stops a script
KILL_GRACE = 3.0
#: seconds the harness waits, after the script ended, for its process group to be gone
GROUP_EXIT_WAIT = 5.0
#: characters of the script's stderr kept in a report
STDERR_TAIL = 6000

REPO_ROOT = Path(__file__).resolve().parent.parent

# Runs in the child before the script: a session (and process group) of its
# own, so the harness can kill the script with the Playwright driver and every
# Chromium process it started, in one killpg.
_BOOTSTRAP = (
    "import os, runpy, sys; os.setsid(); "
    "sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


class ChromiumMissing(AssertionError):
    """/usr/bin/chromium is not there: a test FAILS (never skips) on it."""


class PlaywrightMissing(AssertionError):
    """Playwright's Python package is not installed: a test FAILS on it."""


def chromium_path() -> str:
    """The Chromium binary to launch; raises ChromiumMissing when it is not installed."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise ChromiumMissing(f"{CHROMIUM} not found: {INSTALL_HINT}")
    return CHROMIUM


def require_playwright() -> None:
    """Raise PlaywrightMissing unless the ``playwright`` package imports."""
    if importlib.util.find_spec("playwright") is None:
        raise PlaywrightMissing(
            "Python package playwright not installed: run "
            "`.venv/bin/pip install -e '.[test]'` (never `playwright install`)"
        )


# --------------------------------------------------------------------------
# test side: run a script without blocking the reactor
# --------------------------------------------------------------------------


def run_browser_script(
    script_path: str | os.PathLike[str],
    url: str,
    *args: str,
    timeout: float = 60.0,
    step_timeout: float | None = None,
    workdir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    reactor=None,
):
    """Run a browser script in a subprocess; a Deferred firing with its report (a dict).

    The script gets ``url`` and ``args`` (``run.url``, ``run.args``). It is
    killed, process group and all, after ``timeout`` seconds; each Playwright
    wait in it times out after ``step_timeout`` seconds (default: a third of
    ``timeout``, at most 10). ``workdir`` receives screenshots (default: a new
    temporary directory; pass ``self.mktemp()`` from a trial test).

    The report always has ``ok`` (True only when the script finished its
    scenario and exited 0), ``error_type`` and ``error`` (None when ok),
    ``exit_code``, ``elapsed`` (s), ``pid``, ``workdir``, ``stderr`` (tail),
    ``console`` and ``page_errors`` (what the page logged / threw, from the
    script), ``screenshots`` (paths), plus whatever the scenario put in
    ``run.report``. It fails (errback) only for a harness problem: Chromium or
    Playwright missing raise at once, before any process starts.

    Cancelling the Deferred (trial's own test timeout does) kills the script.
    """
    from twisted.internet import defer, protocol

    if reactor is None:
        from twisted.internet import reactor  # noqa: PLW0621

    chromium_path()
    require_playwright()
    script = Path(script_path).resolve()
    if not script.is_file():
        raise FileNotFoundError(f"browser script not found: {script}")
    if step_timeout is None:
        step_timeout = min(10.0, timeout / 3)
    wd = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="browser-"))
    wd.mkdir(parents=True, exist_ok=True)
    wd = wd.resolve()

    child_env = dict(os.environ)
    if env:
        child_env.update(env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    child_env[ENV_STEP_TIMEOUT_MS] = str(int(step_timeout * 1000))
    child_env[ENV_WORKDIR] = str(wd)

    argv = [sys.executable, "-c", _BOOTSTRAP, str(script), url, *map(str, args)]
    started = time.monotonic()

    class Collect(protocol.ProcessProtocol):
        def __init__(self) -> None:
            self.out: list[bytes] = []
            self.err: list[bytes] = []
            self.killed_after: float | None = None
            self.cancelled = False
            self.pid: int | None = None

        def connectionMade(self) -> None:
            self.pid = self.transport.pid

        def outReceived(self, data: bytes) -> None:
            self.out.append(data)

        def errReceived(self, data: bytes) -> None:
            self.err.append(data)

        def processEnded(self, reason) -> None:
            for call in (killer, hard_killer):
                if call is not None and call.active():
                    call.cancel()
            # the Playwright driver and Chromium die with the script; make sure,
            # and fire only once the whole process group is gone
            _kill_group(self.pid, signal.SIGKILL)
            code = getattr(reason.value, "exitCode", None)
            sig = getattr(reason.value, "signal", None)
            deadline = time.monotonic() + GROUP_EXIT_WAIT

            def finish() -> None:
                if done.called:
                    return
                if _group_alive(self.pid) and time.monotonic() < deadline:
                    reactor.callLater(0.05, finish)
                    return
                report = _make_report(
                    b"".join(self.out).decode("utf-8", "replace"),
                    b"".join(self.err).decode("utf-8", "replace"),
                    exit_code=code,
                    signal_=sig,
                    killed_after=self.killed_after,
                    elapsed=time.monotonic() - started,
                    pid=self.pid,
                    workdir=wd,
                    argv=argv,
                )
                report["group_left_running"] = _group_alive(self.pid)
                done.callback(report)

            finish()

    hard_killer = None

    def stop(sig: int) -> None:
        _kill_group(proto.pid, sig)

    def on_timeout() -> None:
        nonlocal hard_killer
        proto.killed_after = timeout
        stop(signal.SIGTERM)
        hard_killer = reactor.callLater(KILL_GRACE, stop, signal.SIGKILL)

    def cancel(d) -> None:
        # the Deferred errbacks with CancelledError; the process is reaped later
        proto.cancelled = True
        if killer.active():
            killer.cancel()
        stop(signal.SIGKILL)

    done: defer.Deferred[dict[str, Any]] = defer.Deferred(cancel)
    proto = Collect()
    reactor.spawnProcess(proto, sys.executable, argv, env=child_env, path=str(wd))
    killer = reactor.callLater(timeout, on_timeout)
    return done


def serve_site(test, factory, *, reactor=None) -> str:
    """Listen with ``factory`` (a twisted.web Site, say) on 127.0.0.1, a free port.

    Returns the base url (``http://127.0.0.1:PORT``). ``test`` (a trial
    TestCase) gets a cleanup that stops listening and closes every connection
    the browser left open (keep-alive), waiting until they are gone, so trial
    finds a clean reactor.
    """
    from twisted.internet import defer
    from twisted.protocols.policies import WrappingFactory

    if reactor is None:
        from twisted.internet import reactor  # noqa: PLW0621

    class Tracking(WrappingFactory):
        def __init__(self, wrapped) -> None:
            super().__init__(wrapped)
            self.lost: list[defer.Deferred[None]] = []

        def unregisterProtocol(self, p) -> None:
            super().unregisterProtocol(p)
            if not self.protocols:
                waiting, self.lost = self.lost, []
                for d in waiting:
                    d.callback(None)

        def all_lost(self) -> defer.Deferred[None]:
            if not self.protocols:
                return defer.succeed(None)
            d: defer.Deferred[None] = defer.Deferred()
            self.lost.append(d)
            for p in list(self.protocols):
                p.transport.abortConnection()
            return d

    wrapper = Tracking(factory)
    port = reactor.listenTCP(0, wrapper, interface="127.0.0.1")

    async def stop() -> None:
        await port.stopListening()
        await wrapper.all_lost()

    test.addCleanup(lambda: defer.ensureDeferred(stop()))
    return f"http://127.0.0.1:{port.getHost().port}"


def _group_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pid: int | None, sig: int) -> None:
    """Signal the script's process group (it leads one); the script alone if not yet."""
    if pid is None:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _make_report(
    stdout: str,
    stderr: str,
    *,
    exit_code: int | None,
    signal_: int | None,
    killed_after: float | None,
    elapsed: float,
    pid: int | None,
    workdir: Path,
    argv: list[str],
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            try:
                report = json.loads(line[len(RESULT_MARKER):])
            except ValueError as exc:
                report = {"ok": False, "error_type": "BadReport", "error": f"unreadable report: {exc}"}
    found = bool(report)
    report.setdefault("console", [])
    report.setdefault("page_errors", [])
    report.setdefault("screenshots", [])
    if killed_after is not None:
        report["ok"] = False
        report["error_type"] = "HarnessTimeout"
        report["error"] = f"browser script still running after {killed_after:g} s: killed"
    elif not found:
        report["ok"] = False
        report["error_type"] = "NoReport"
        report["error"] = (
            f"browser script ended (exit code {exit_code}, signal {signal_}) "
            "without printing a report; see stderr"
        )
    elif exit_code != 0 and report.get("ok"):
        report["ok"] = False
        report["error_type"] = "ExitCode"
        report["error"] = f"browser script reported success but exited with {exit_code}"
    report.setdefault("ok", False)
    report.setdefault("error_type", None)
    report.setdefault("error", None)
    report["exit_code"] = exit_code
    report["elapsed"] = round(elapsed, 3)
    report["pid"] = pid
    report["workdir"] = str(workdir)
    report["stdout"] = "\n".join(
        line for line in stdout.splitlines() if not line.startswith(RESULT_MARKER)
    )[-STDERR_TAIL:]
    report["stderr"] = stderr[-STDERR_TAIL:]
    report["argv"] = argv
    return report


def explain(result: Mapping[str, Any]) -> str:
    """A readable account of a report, for an assertion message."""
    lines = [
        f"browser script {'succeeded' if result.get('ok') else 'FAILED'} "
        f"after {result.get('elapsed')} s (exit code {result.get('exit_code')})",
    ]
    if result.get("error"):
        lines.append(f"{result.get('error_type')}: {result.get('error')}")
    if result.get("url"):
        lines.append(f"page url at the end: {result['url']}")
    for key in ("page_errors", "console", "screenshots"):
        if result.get(key):
            lines.append(f"{key}:")
            lines.extend(f"  {item}" for item in result[key])
    if result.get("traceback"):
        lines.append("traceback in the script:\n" + result["traceback"])
    if result.get("stderr"):
        lines.append("stderr (tail):\n" + result["stderr"])
    return "\n".join(lines)


def assert_browser_ok(result: Mapping[str, Any]) -> None:
    """Fail with the whole story unless the script finished its scenario."""
    if not result.get("ok"):
        raise AssertionError(explain(result))


# --------------------------------------------------------------------------
# script side: runs in the subprocess
# --------------------------------------------------------------------------


@dataclass
class BrowserRun:
    """What a scenario gets: the page, its arguments and the report to fill."""

    page: Any  # playwright.sync_api.Page
    context: Any  # playwright.sync_api.BrowserContext
    url: str
    args: list[str]
    timeout_ms: int
    workdir: Path
    report: dict[str, Any] = field(default_factory=dict)

    def screenshot(self, name: str = "page.png", **kwargs: Any) -> str:
        """Save a PNG of the page in the work directory; its path is also reported."""
        path = self.workdir / name
        kwargs.setdefault("timeout", self.timeout_ms)
        self.page.screenshot(path=str(path), **kwargs)
        self.report.setdefault("screenshots", []).append(str(path))
        return str(path)


def launch_context(playwright: Any, user_data_dir: str | os.PathLike[str], timeout_ms: int,
                   javascript: bool = True) -> Any:
    """Debian's Chromium, headless, with CHROMIUM_FLAGS and a fresh profile
    (pages' JavaScript off unless C{javascript})."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=chromium_path(),
        headless=True,
        args=list(CHROMIUM_FLAGS),
        timeout=max(timeout_ms, 20_000),
        viewport={"width": 1024, "height": 768},
        java_script_enabled=javascript,
    )


def run_script(scenario: Callable[[BrowserRun], Any], argv: list[str] | None = None) -> None:
    """Launch Chromium, run ``scenario(run)`` on one page, print the report, exit.

    ``argv`` defaults to ``sys.argv``: the script, the url, then the extra
    arguments. Exit status 0 when the scenario returned, 1 when it raised (a
    Playwright ``TimeoutError`` included): the report then carries
    ``error_type``, ``error``, ``traceback``, the page's url, and a
    ``failure.png`` screenshot when one could be taken.
    """
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2:
        print(f"usage: {argv[0] if argv else 'script'} URL [ARG...]", file=sys.stderr)
        sys.exit(2)
    url, args = argv[1], argv[2:]
    timeout_ms = int(os.environ.get(ENV_STEP_TIMEOUT_MS, "10000"))
    workdir_env = os.environ.get(ENV_WORKDIR)
    workdir = Path(workdir_env) if workdir_env else Path(tempfile.mkdtemp(prefix="browser-"))
    workdir.mkdir(parents=True, exist_ok=True)

    report: dict[str, Any] = {"console": [], "page_errors": [], "screenshots": []}
    ok = False
    profile = tempfile.mkdtemp(prefix="profile-", dir=workdir)
    run: BrowserRun | None = None
    try:
        chromium_path()
        from playwright.sync_api import expect, sync_playwright

        expect.set_options(timeout=timeout_ms)
        with sync_playwright() as pw:
            javascript = os.environ.get(ENV_JAVASCRIPT, "1") != "0"
            context = launch_context(pw, profile, timeout_ms, javascript)
            try:
                context.set_default_timeout(timeout_ms)
                context.set_default_navigation_timeout(timeout_ms)
                page = context.pages[0] if context.pages else context.new_page()
                report["user_agent"] = page.evaluate("navigator.userAgent")
                report["browser_version"] = _browser_version(context, page)
                page.on("console", lambda m: report["console"].append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: report["page_errors"].append(str(e)))
                run = BrowserRun(page, context, url, args, timeout_ms, workdir, report)
                try:
                    scenario(run)
                    ok = True
                except Exception as exc:  # reported, not raised: the test decides
                    _record_error(report, exc)
                    try:
                        report["url"] = page.url
                        run.screenshot("failure.png", timeout=min(timeout_ms, 5000))
                    except Exception:
                        pass
                else:
                    report.setdefault("url", page.url)
            finally:
                context.close()
    except Exception as exc:
        if "error_type" not in report:
            _record_error(report, exc)
        ok = False
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    report["ok"] = ok
    if ok:
        report.setdefault("error_type", None)
        report.setdefault("error", None)
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(report, default=str) + "\n")
    sys.stdout.flush()
    sys.exit(0 if ok else 1)


def _browser_version(context: Any, page: Any) -> str | None:
    """Chromium's full version (the user agent says only 156.0.0.0), via CDP."""
    try:
        cdp = context.new_cdp_session(page)
        try:
            return cdp.send("Browser.getVersion")["product"]
        finally:
            cdp.detach()
    except Exception:
        return None


def _record_error(report: dict[str, Any], exc: BaseException) -> None:
    report["error_type"] = type(exc).__name__
    report["error"] = str(exc).strip()
    report["traceback"] = "".join(traceback.format_exception(exc))[-STDERR_TAIL:]
