"""Tests for L{convergence.ctl}, the C{convergencectl} command."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from twisted.trial.unittest import TestCase

from convergence import ctl
from convergence.auth.scram import verify_password
from convergence.store.sqlite import SqliteAccountStore

CONFIG = """\
domains = ["example.com", "example.net"]

[xmpp]
scram_iterations = 5000
"""


class CtlTests(TestCase):
    """C{main()} in-process, with a temporary data directory."""

    def setUp(self) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="convergence-test-"))
        self.addCleanup(shutil.rmtree, self.temp, ignore_errors=True)
        self.data_dir = self.temp / "data"
        self.config = self.temp / "convergence.toml"
        self.config.write_text(CONFIG)
        self.prompts: list[str] = []
        self.answers: list[str] = []
        self.patch(ctl, "getpass", self.fake_getpass)

    def fake_getpass(self, prompt: str) -> str:
        """Record the prompt and give the next scripted answer."""
        self.prompts.append(prompt)
        return self.answers.pop(0)

    def run_ctl(self, *argv: str, config: bool = True) -> tuple[int, str, str]:
        """Run the command; return its exit code, stdout and stderr."""
        out, err = io.StringIO(), io.StringIO()
        options = ["--data-dir", str(self.data_dir)]
        if config:
            options += ["--config", str(self.config)]
        with redirect_stdout(out), redirect_stderr(err):
            code = ctl.main([*options, *argv])
        return code, out.getvalue(), err.getvalue()

    def stored(self, localpart: str, domain: str) -> dict:
        """The credentials on disk for an account."""
        store = SqliteAccountStore(self.data_dir / "convergence.sqlite3")
        self.addCleanup(store.close)
        return store.get_credentials(localpart, domain)

    def test_adduser(self) -> None:
        """adduser creates the data directory and the account."""
        code, out, err = self.run_ctl(
            "adduser", "Juliet@example.com", "--password", "pw"
        )
        self.assertEqual((code, out, err), (0, "added juliet@example.com\n", ""))
        self.assertTrue((self.data_dir / "convergence.sqlite3").exists())
        credentials = self.stored("juliet", "example.com")
        self.assertEqual(set(credentials), {"SCRAM-SHA-1", "SCRAM-SHA-256"})
        for credential in credentials.values():
            self.assertEqual(credential.iterations, 5000)
            self.assertTrue(verify_password("pw", credential))

    def test_adduser_prompts(self) -> None:
        """Without --password, the password is asked for twice."""
        self.answers = ["s3cret", "s3cret"]
        code, out, _ = self.run_ctl("adduser", "juliet@example.com")
        self.assertEqual(code, 0)
        self.assertEqual(len(self.prompts), 2)
        credential = self.stored("juliet", "example.com")["SCRAM-SHA-256"]
        self.assertTrue(verify_password("s3cret", credential))

    def test_adduser_prompt_mismatch(self) -> None:
        """Two different answers are refused and nothing is created."""
        self.answers = ["s3cret", "secret"]
        code, out, err = self.run_ctl("adduser", "juliet@example.com")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("passwords do not match", err)
        self.assertIsNone(self.stored("juliet", "example.com"))

    def test_adduser_duplicate(self) -> None:
        """An existing account is refused before any prompt."""
        self.run_ctl("adduser", "juliet@example.com", "--password", "pw")
        code, _, err = self.run_ctl("adduser", "juliet@example.com")
        self.assertEqual(code, 1)
        self.assertIn("already exists", err)
        self.assertEqual(self.prompts, [])

    def test_adduser_bad_password(self) -> None:
        """An empty password is refused."""
        code, _, err = self.run_ctl("adduser", "juliet@example.com", "--password", "")
        self.assertEqual(code, 1)
        self.assertIn("password", err)

    def test_domain_not_served(self) -> None:
        """A JID outside the configured domains is refused with a clear message."""
        code, out, err = self.run_ctl(
            "adduser", "juliet@example.org", "--password", "pw"
        )
        self.assertEqual((code, out), (1, ""))
        self.assertIn("example.org is not a served domain", err)
        self.assertIn("example.com, example.net", err)
        self.assertEqual(err.count("\n"), 1)

    def test_default_config_domain(self) -> None:
        """Without a config file, the default domain is localhost."""
        code, out, _ = self.run_ctl(
            "adduser", "admin@localhost", "--password", "pw", config=False
        )
        self.assertEqual((code, out), (0, "added admin@localhost\n"))
        code, _, _ = self.run_ctl(
            "adduser", "admin@example.com", "--password", "pw", config=False
        )
        self.assertEqual(code, 1)

    def test_invalid_jids(self) -> None:
        """Invalid JIDs, domains alone and full JIDs are refused."""
        for jid in ("juliet@", "example.com", "juliet@example.com/balcony"):
            code, out, err = self.run_ctl("adduser", jid, "--password", "pw")
            self.assertEqual((code, out), (1, ""), jid)
            self.assertTrue(err.startswith("convergencectl: error: "), err)

    def test_passwd(self) -> None:
        """passwd replaces the credentials."""
        self.run_ctl("adduser", "juliet@example.com", "--password", "old")
        self.answers = ["new", "new"]
        code, out, _ = self.run_ctl("passwd", "juliet@example.com")
        self.assertEqual(code, 0)
        self.assertEqual(out, "changed the password of juliet@example.com\n")
        credential = self.stored("juliet", "example.com")["SCRAM-SHA-1"]
        self.assertTrue(verify_password("new", credential))
        self.assertFalse(verify_password("old", credential))

    def test_passwd_unknown(self) -> None:
        """passwd of an unknown account fails without prompting."""
        code, _, err = self.run_ctl("passwd", "romeo@example.com")
        self.assertEqual(code, 1)
        self.assertEqual(
            err, "convergencectl: error: no such account: romeo@example.com\n"
        )
        self.assertEqual(self.prompts, [])

    def test_deluser(self) -> None:
        """deluser removes the account; a second time it is unknown."""
        self.run_ctl("adduser", "juliet@example.com", "--password", "pw")
        code, out, _ = self.run_ctl("deluser", "juliet@example.com")
        self.assertEqual((code, out), (0, "deleted juliet@example.com\n"))
        self.assertIsNone(self.stored("juliet", "example.com"))
        code, _, err = self.run_ctl("deluser", "juliet@example.com")
        self.assertEqual(code, 1)
        self.assertIn("no such account", err)

    def test_deluser_removes_what_others_hold_of_it(self) -> None:
        """As in-band removal does (XEP-0077 3.2, account/removed): the
        account's own data goes, other local rosters' items of it lose
        their subscriptions (their versions move), other accounts' PEP
        nodes lose its explicit subscriptions."""
        from convergence.store.interfaces import RosterItem
        from convergence.store.sqlite_im import SqliteImStore
        from convergence.store.sqlite_pep import SqlitePepStore

        for jid in ("juliet@example.com", "romeo@example.com", "nurse@example.com"):
            self.run_ctl("adduser", jid, "--password", "pw")
        path = self.data_dir / "convergence.sqlite3"
        im, pep = SqliteImStore(path), SqlitePepStore(path)
        self.addCleanup(im.close)
        self.addCleanup(pep.close)
        im.put_item("romeo", "example.com", RosterItem(
            "juliet@example.com", subscription="both", name="J", groups=("Verona",)))
        im.put_item("nurse", "example.com", RosterItem(
            "juliet@example.com", ask=True, pending_in=True))
        im.put_item("nurse", "example.com", RosterItem("romeo@example.com",
                                                       subscription="to"))
        im.put_item("juliet", "example.com", RosterItem("romeo@example.com",
                                                        subscription="both"))
        im.store_message("juliet", "example.com", 1, b"<message/>", 0)
        pep.create_pep_node("romeo", "example.com", "urn:x", {}, 0)
        pep.subscribe_pep("romeo", "example.com", "urn:x", "juliet@example.com/balcony", 0)
        pep.subscribe_pep("romeo", "example.com", "urn:x", "juliet@example.com", 0)
        pep.subscribe_pep("romeo", "example.com", "urn:x", "juliet@example.comx", 0)
        before = im.roster("romeo", "example.com")[0]
        code, _, _ = self.run_ctl("deluser", "juliet@example.com")
        self.assertEqual(code, 0)
        version, [item] = im.roster("romeo", "example.com")
        self.assertEqual((item.contact, item.subscription, item.name, item.groups),
                         ("juliet@example.com", "none", "J", ("Verona",)))
        self.assertGreater(version, before)
        items = {i.contact: i for i in im.roster("nurse", "example.com")[1]}
        self.assertEqual((items["juliet@example.com"].ask,
                          items["juliet@example.com"].pending_in), (False, False))
        self.assertEqual(items["romeo@example.com"].subscription, "to")
        self.assertEqual(im.roster("juliet", "example.com"), (0, []))
        self.assertEqual(im.count_messages("juliet", "example.com"), 0)
        self.assertEqual(pep.pep_subscriptions("romeo", "example.com"),
                         [("urn:x", "juliet@example.comx")])

    def test_listusers(self) -> None:
        """listusers prints sorted bare JIDs, optionally of one domain."""
        for jid in ("romeo@example.net", "juliet@example.com", "benvolio@example.net"):
            self.assertEqual(self.run_ctl("adduser", jid, "--password", "pw")[0], 0)
        code, out, _ = self.run_ctl("listusers")
        self.assertEqual(code, 0)
        self.assertEqual(
            out.splitlines(),
            ["benvolio@example.net", "juliet@example.com", "romeo@example.net"],
        )
        code, out, _ = self.run_ctl("listusers", "example.net")
        self.assertEqual(
            out.splitlines(), ["benvolio@example.net", "romeo@example.net"]
        )

    def test_listusers_empty(self) -> None:
        """An empty database lists nothing and succeeds."""
        self.assertEqual(self.run_ctl("listusers"), (0, "", ""))

    def test_usage_errors(self) -> None:
        """Missing or unknown commands and options exit with 2."""
        self.assertEqual(self.run_ctl()[0], 2)
        self.assertEqual(self.run_ctl("frobnicate")[0], 2)
        self.assertEqual(self.run_ctl("adduser")[0], 2)
        self.assertEqual(self.run_ctl("listusers", "--bogus")[0], 2)

    def test_bad_config(self) -> None:
        """An invalid or missing config file is one line on stderr, exit 2."""
        self.config.write_text("domains = 42\n")
        code, out, err = self.run_ctl("listusers")
        self.assertEqual((code, out), (2, ""))
        self.assertEqual(err.count("\n"), 1)
        self.assertIn("domains", err)
        self.config.unlink()
        code, _, err = self.run_ctl("listusers")
        self.assertEqual(code, 2)
        self.assertIn("cannot read config file", err)


class ConsoleScriptTests(TestCase):
    """The installed C{convergencectl} script."""

    def test_subprocess(self) -> None:
        """The console script runs main() and returns its exit code."""
        temp = Path(tempfile.mkdtemp(prefix="convergence-test-"))
        self.addCleanup(shutil.rmtree, temp, ignore_errors=True)
        script = Path(sys.executable).parent / "convergencectl"
        base = [str(script), "--data-dir", str(temp / "data")]

        def run(*argv: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*base, *argv],
                capture_output=True,
                text=True,
                timeout=60,
                env=os.environ.copy(),
            )

        added = run("adduser", "admin@localhost", "--password", "pw")
        self.assertEqual(
            (added.returncode, added.stdout), (0, "added admin@localhost\n")
        )
        listed = run("listusers")
        self.assertEqual((listed.returncode, listed.stdout), (0, "admin@localhost\n"))
        missing = run("deluser", "nobody@localhost")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no such account", missing.stderr)
