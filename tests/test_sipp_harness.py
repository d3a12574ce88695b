"""
The sipp scenarios in tests/sipp/ and tests/sipp_harness.py, proven against
sipp itself: tests/sipp/uas_for_selftest.xml (a sipp UAS standing in for
convergence) and sipp's built-in 'uas'. Each UAC scenario must pass against a
right callee and FAIL against a wrong one, so its checks really bite.

sipp missing is a failure, not a skip: `make test` installs it (`make sipp`).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests import sipp_harness
from tests.sipp_harness import (
    SippMissing,
    SippUas,
    parse_screen,
    parse_stat_csv,
    require_sipp,
    run_sipp,
    run_sipp_async,
    sipp_duration_ms,
    sipp_version,
)

# A -trace_stat file as sipp 3.6.1 writes it (columns cut after CallLength): a
# header, the dump at start, the final dump (3 calls: 2 successful, 1 failed).
STAT_CSV = (
    "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;"
    "CallRate(P);CallRate(C);IncomingCall(P);IncomingCall(C);OutgoingCall(P);"
    "OutgoingCall(C);TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);"
    "FailedCall(P);FailedCall(C);FailedRegexpDoesntMatch(P);FailedRegexpDoesntMatch(C);"
    "Retransmissions(P);Retransmissions(C);ResponseTime1(P);ResponseTime1(C);"
    "CallLength(P);CallLength(C);\n"
    "2026-11-21\t00:13:32.792715\t1795220012.792715;2026-11-21\t00:13:32.792715\t"
    "1795220012.792715;2026-11-21\t00:13:32.793250\t1795220012.793250;00:00:00;00:00:00;"
    "10;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;00:00:00:000000;00:00:00:000000;"
    "00:00:00:000000;00:00:00:000000;\n"
    "2026-11-21\t00:13:32.792715\t1795220012.792715;2026-11-21\t00:13:32.793352\t"
    "1795220012.793352;2026-11-21\t00:13:33.099903\t1795220013.099903;00:00:00;00:00:00;"
    "10;9.80392;9.77199;0;0;3;3;3;0;2;2;1;1;1;1;0;2;00:00:00:000000;00:00:00:002500;"
    "00:00:00:008000;00:00:01:008000;\n"
)

# The end of sipp's final statistics screen (its stdout with -nostdin).
SCREEN = """\
-------------------------+---------------------------+--------------------------
  Incoming calls created |        0                  |        0
  Outgoing calls created |        0                  |        3
  Total Calls created    |                           |        3
  Current Calls          |        0                  |
-------------------------+---------------------------+--------------------------
  Successful call        |        0                  |        2
  Failed call            |        0                  |        1
-------------------------+---------------------------+--------------------------
------------------------------ Test Terminated --------------------------------
"""


class ParsingTests(SynchronousTestCase):
    def test_stat_csv_final_row(self) -> None:
        stats = parse_stat_csv(STAT_CSV)
        self.assertEqual(stats["SuccessfulCall(C)"], "2")
        self.assertEqual(stats["FailedCall(C)"], "1")
        self.assertEqual(stats["FailedRegexpDoesntMatch(C)"], "1")
        self.assertEqual(stats["OutgoingCall(C)"], "3")
        self.assertEqual(sipp_duration_ms(stats["ResponseTime1(C)"]), 2.5)
        self.assertEqual(sipp_duration_ms(stats["CallLength(C)"]), 1008.0)

    def test_stat_csv_without_rows(self) -> None:
        self.assertEqual(parse_stat_csv(""), {})
        self.assertEqual(parse_stat_csv(STAT_CSV.splitlines()[0] + "\n"), {})

    def test_durations(self) -> None:
        self.assertEqual(sipp_duration_ms("00:00:03"), 3000.0)
        self.assertEqual(sipp_duration_ms("01:02:03:000250"), 3723000.25)
        self.assertIsNone(sipp_duration_ms(""))

    def test_screen(self) -> None:
        self.assertEqual(
            parse_screen(SCREEN),
            {"Outgoing calls created": 3, "Total Calls created": 3,
             "Successful call": 2, "Failed call": 1},
        )

    def test_missing_sipp_fails_clearly(self) -> None:
        self.patch(os, "environ", {**os.environ, "PATH": "/nonexistent"})
        with self.assertRaises(SippMissing) as caught:
            require_sipp()
        self.assertIn("make sipp", str(caught.exception))
        self.assertIsInstance(caught.exception, AssertionError)  # a failure, never a skip


def fake_sipp(testcase: SynchronousTestCase) -> None:
    """Put a 'sipp' that hangs first on PATH, and make the harness impatient."""
    bindir = Path(testcase.mktemp()).resolve()
    bindir.mkdir()
    fake = bindir / "sipp"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    testcase.patch(os, "environ", {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"})
    testcase.patch(sipp_harness, "KILL_GRACE", 0.3)


class KillOnTimeoutTests(SynchronousTestCase):
    def test_sync(self) -> None:
        fake_sipp(self)
        started = time.monotonic()
        result = run_sipp("options", "127.0.0.1:9", timeout=0.2)
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(result.timed_out)
        self.assertIsNone(result.returncode)
        self.assertFalse(result.ok)
        self.assertIn("killed on timeout", result.explain())


class AsyncKillOnTimeoutTests(TestCase):
    timeout = 10

    async def test_async(self) -> None:
        fake_sipp(self)
        started = time.monotonic()
        result = await run_sipp_async("options", "127.0.0.1:9", timeout=0.2)
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(result.timed_out)
        self.assertIsNone(result.returncode)
        self.assertFalse(result.ok)


class SippTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        require_sipp()

    def uas(self, calls: int, transport: str = "u1", scenario: str = "uas_for_selftest.xml",
            **keys: str) -> SippUas:
        uas = SippUas(scenario, transport=transport, calls=calls, keys=keys, timeout=15)
        uas.start()
        self.addCleanup(uas.stop)
        return uas

    def assertPasses(self, uas: SippUas, scenario: str, calls: int, transport: str = "u1",
                     **kwargs) -> None:
        result = run_sipp(scenario, uas.target, transport=transport, calls=calls,
                          rate=50, timeout=10, **kwargs)
        self.assertTrue(result.ok, result.explain())
        self.assertEqual(result.returncode, 0)
        self.assertEqual((result.successful, result.failed), (calls, 0))
        # the UAS saw every call through (ACK branch, Expires: 0 ... checked there)
        server = uas.wait()
        self.assertTrue(server.ok, server.explain())

    def assertFails(self, uas: SippUas, scenario: str, calls: int, failure: str,
                    **kwargs) -> None:
        result = run_sipp(scenario, uas.target, calls=calls, rate=50, timeout=10, **kwargs)
        self.assertFalse(result.ok)
        self.assertEqual(result.returncode, 1, result.explain())
        self.assertEqual((result.successful, result.failed), (0, calls), result.explain())
        self.assertEqual(result.failures, {failure: calls}, result.explain())


class JabberScenarioTests(SippTestCase):
    """uac_jabber.xml: draft-sparks-simple-jabber-sessions Figure 1."""

    def test_udp(self) -> None:
        uas = self.uas(3)
        result = run_sipp("uac_jabber.xml", uas.target, service="chatline", calls=3,
                          rate=50, timeout=10)
        self.assertTrue(result.ok, result.explain())
        self.assertIsNotNone(result.response_time_ms)
        self.assertGreaterEqual(result.call_length_ms, 0)
        server = uas.wait()
        self.assertTrue(server.ok, server.explain())

    def test_tcp(self) -> None:
        self.assertPasses(self.uas(3, "t1"), "uac_jabber", 3, "t1", service="chatline")

    def test_audio_not_declined_fails(self) -> None:
        self.assertFails(self.uas(2, audio_port="4000"), "uac_jabber", 2,
                         "RegexpDoesntMatch", service="chatline")

    def test_other_thread_fails(self) -> None:
        self.assertFails(self.uas(2, thread_suffix="-other"), "uac_jabber", 2,
                         "RegexpDoesntMatch", service="chatline")

    def test_no_jid_fails(self) -> None:
        self.assertFails(self.uas(2, jid=" "), "uac_jabber", 2, "RegexpDoesntMatch",
                         service="chatline")

    def test_builtin_uas_fails(self) -> None:
        # sipp's own 'uas' answers audio on its media port and no m=message at all
        uas = self.uas(2, scenario="builtin:uas")
        self.assertFails(uas, "uac_jabber", 2, "RegexpDoesntMatch", service="chatline")


class OptionsScenarioTests(SippTestCase):
    def test_udp(self) -> None:
        self.assertPasses(self.uas(2), "options", 2)

    def test_tcp(self) -> None:
        self.assertPasses(self.uas(2, "t1"), "options", 2, "t1")

    def test_allow_without_invite_fails(self) -> None:
        self.assertFails(self.uas(1, allow="ACK, BYE, OPTIONS"), "options", 1,
                         "RegexpDoesntMatch")


class RegisterScenarioTests(SippTestCase):
    def test_udp(self) -> None:
        self.assertPasses(self.uas(2), "register", 2, auth=("alice", "secret"))

    def test_tcp(self) -> None:
        self.assertPasses(self.uas(2, "t1"), "register", 2, "t1", auth=("alice", "secret"))

    def test_wrong_password_fails(self) -> None:
        # the UAS answers 403 where the scenario waits for 200
        self.assertFails(self.uas(1), "register", 1, "UnexpectedMessage",
                         auth=("alice", "not-the-password"))


class CancelScenarioTests(SippTestCase):
    """cancel.xml: the selftest UAS answers 481 to a CANCEL whose branch or CSeq
    number is not the INVITE's, and fails its call on an ACK with another branch."""

    def test_udp(self) -> None:
        self.assertPasses(self.uas(2), "cancel", 2, service="ringer")

    def test_tcp(self) -> None:
        self.assertPasses(self.uas(2, "t1"), "cancel", 2, "t1", service="ringer")


class HarnessTests(SippTestCase):
    def test_version(self) -> None:
        self.assertRegex(sipp_version(), r"^SIPp v\d+\.\d+")

    def test_nobody_listening_is_bounded(self) -> None:
        uas = self.uas(1)
        target = uas.target
        uas.stop()  # a port nobody answers on any more
        started = time.monotonic()
        result = run_sipp("options", target, calls=1, timeout=2)
        self.assertLess(time.monotonic() - started, 8)
        self.assertFalse(result.ok)
        self.assertEqual(result.successful, 0)
        self.assertIn(result.returncode, (1, 255), result.explain())


class AsyncHarnessTests(TestCase):
    """run_sipp_async leaves the reactor free (for a server in the same process)."""

    timeout = 20

    async def test_jabber(self) -> None:
        require_sipp()
        uas = SippUas(calls=2, timeout=15)
        uas.start()
        self.addCleanup(uas.stop)
        result = await run_sipp_async("uac_jabber", uas.target, service="chatline", calls=2,
                                      rate=50, timeout=10)
        self.assertTrue(result.ok, result.explain())
        self.assertEqual(result.successful, 2)
