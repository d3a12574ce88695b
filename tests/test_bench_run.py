"""
Keeps the bench code (bench/run.py, bench/servers.py, bench/sipbench.py) from
rotting without running `make bench`: the table and its math on canned runs,
the JSON results, the generated server configs, the Prosody account files,
the SIP ramp logic, and one real smoke: `bench/run.py --quick --only sip`
against convergence alone at one rate (sipp is installed by `make test`).

Prosody is a bench-only dependency: nothing here installs or starts it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from bench import run, servers, sipbench
from bench.servers import (
    XmppSettings,
    convergence_config,
    prosody_config,
)
from convergence.config import S2SPolicy, load_config

ROOT = Path(__file__).resolve().parent.parent


def xmpp_report(value: float, cpu: float, **results: float) -> dict:
    return {"mode": "login", "results": {"logins_per_s": value, "failures": 0, **results},
            "generator_cpu_pct": cpu}


def step(rate: int, ok: bool, p99: float = 4.0, cpu: float = 5.0) -> dict:
    return {"rate": rate, "ok": ok, "p50_ms": 0.0, "p99_ms": p99, "generator_cpu_pct": cpu,
            "reason": "" if ok else "failed"}


class MathTests(SynchronousTestCase):
    def test_median_ignores_missing(self) -> None:
        self.assertEqual(run.median([3.0, 1.0, 2.0]), 2.0)
        self.assertEqual(run.median([4.0, None, 1.0, 2.0, 3.0]), 2.5)
        self.assertIsNone(run.median([None, None]))
        self.assertIsNone(run.median([]))

    def test_ratio(self) -> None:
        self.assertEqual(run.ratio(300.0, 600.0), 0.5)
        self.assertIsNone(run.ratio(None, 600.0))
        self.assertIsNone(run.ratio(300.0, None))
        self.assertIsNone(run.ratio(300.0, 0.0))

    def test_number_formats(self) -> None:
        self.assertEqual(run.fmt_number(51593.3), "51,593")
        self.assertEqual(run.fmt_number(47.49), "47.5")
        self.assertEqual(run.fmt_number(3.468), "3.47")
        self.assertEqual(run.fmt_number(3200, capped=True), ">=3,200")
        self.assertEqual(run.fmt_number(None), "-")
        self.assertEqual(run.fmt_number(4.0), "4")
        self.assertEqual(run.fmt_ratio(0.25), "0.25x")
        self.assertEqual(run.fmt_ratio(0.125, ref_capped=True), "<=0.12x")
        self.assertEqual(run.fmt_ratio(2.0, conv_capped=True), ">=2.00x")
        self.assertEqual(run.fmt_cpu(95.0, 40.2), "95! / 40")
        self.assertEqual(run.fmt_cpu(None, 12.0), "- / 12")


class TableTests(SynchronousTestCase):
    def figure(self, name: str) -> run.Figure:
        return next(f for f in run.figures(run.Plan()) if f.name == name)

    def test_xmpp_rows_are_medians(self) -> None:
        raw = {"convergence": [xmpp_report(400, 50), xmpp_report(600, 60),
                               xmpp_report(500, 55)],
               "reference": [xmpp_report(250, 40), {"error": "did not start"},
                             xmpp_report(200, 45)]}
        rows, summary = run.rows_for(self.figure("login_scram"), raw)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0].convergence, 500)
        self.assertEqual(rows[0].reference, 225)  # the error run is left out
        self.assertAlmostEqual(rows[0].ratio, 500 / 225)
        self.assertEqual(rows[0].generator_cpu, (55, 42.5))
        self.assertEqual(summary["convergence"], 500)

    def test_throughput_latency_rows(self) -> None:
        def report(rate: float, p50: float, p99: float) -> dict:
            return {"results": {"messages_per_s": rate, "latency_p50_ms": p50,
                                "latency_p99_ms": p99, "lost": 0, "errors": 0},
                    "generator_cpu_pct": 30}

        raw = {"convergence": [report(50000, 3, 6)], "reference": [report(20000, 10, 15)]}
        rows, summary = run.rows_for(self.figure("throughput"), raw)
        self.assertEqual([r.convergence for r in rows], [50000, 3, 6])
        self.assertEqual([r.reference for r in rows], [20000, 10, 15])
        self.assertEqual(rows[1].better, "lower")
        self.assertEqual(summary["latency_p99_ms"], {"convergence": 6, "reference": 15})

    def test_idle_metric_alias(self) -> None:
        """The older key name of the idle result is read too."""
        report = {"results": {"rss_kib_per_connection": 41.5}}
        self.assertEqual(run.metric_of(report, "rss_per_connection_kib"), 41.5)

    def test_sip_rows(self) -> None:
        conv = [{"max_rate": 400, "capped": False,
                 "steps": [step(100, True), step(200, True, 16), step(400, True, 120, 9),
                           step(800, False)]}] * 3
        ref = [{"max_rate": 3200, "capped": True,
                "steps": [step(r, True, 4, 10) for r in (100, 200, 400, 800, 1600, 3200)]}] * 3
        rows, summary = run.rows_for(self.figure("sip"), {"convergence": conv,
                                                          "reference": ref})
        self.assertEqual((rows[0].convergence, rows[0].reference), (400, 3200))
        self.assertEqual(rows[0].capped, (False, True))
        self.assertEqual(summary["common_rate"], 400)
        self.assertIn("400 calls/s", rows[2].title)
        self.assertEqual((rows[2].convergence, rows[2].reference), (120, 4))
        table = run.format_table(rows)
        self.assertIn(">=3,200", table)
        self.assertIn("<=0.12x", table)

    def test_sip_latency_row_at_the_plan_rate(self) -> None:
        """The p99 row at the plan's latency rate reads the step at that rate,
        wherever the common rate is."""
        plan = run.Plan(sip_latency_rate=200)
        conv = [{"max_rate": 400, "capped": False,
                 "steps": [step(100, True, 3), step(200, True, 7), step(400, True, 50)]}]
        ref = [{"max_rate": 400, "capped": False,
                "steps": [step(100, True, 1), step(200, True, 2), step(400, True, 4)]}]
        figure = next(f for f in run.figures(plan) if f.name == "sip")
        rows, summary = run.rows_for(figure, {"convergence": conv, "reference": ref}, plan)
        self.assertEqual(summary["common_rate"], 400)
        self.assertIn("at 200 calls/s", rows[3].title)
        self.assertEqual((rows[3].convergence, rows[3].reference), (7, 2))

    def test_registration_rows(self) -> None:
        """Registrations/s and the memory rows read sipbench's results."""
        figure = self.figure("sip_register_sha256")
        conv = [{"results": {"registrations_per_s": v, "p99_ms": 9.0},
                 "generator_cpu_pct": 30.0} for v in (900.0, 1000.0, 1100.0)]
        ref = [{"results": {"registrations_per_s": 4000.0, "p99_ms": 2.0},
                "generator_cpu_pct": 95.0}] * 3
        rows, summary = run.rows_for(figure, {"convergence": conv, "reference": ref})
        self.assertEqual((rows[0].convergence, rows[0].reference), (1000.0, 4000.0))
        self.assertEqual(summary["ratio"], 0.25)
        self.assertIn("95!", run.format_table(rows))
        memory = self.figure("sip_dialogs_10000")
        self.assertFalse(memory.reference)
        rows, _ = run.rows_for(memory, {"convergence": [{"results": {"kib_per_dialog": 8.5}}]})
        self.assertEqual((rows[0].convergence, rows[0].reference), (8.5, None))

    def test_ladders(self) -> None:
        """Every rate search is printed with its steps and why one failed."""
        found = {"max_rate": 200, "capped": False,
                 "steps": [step(100, True), step(200, True), step(400, False)]}
        found["steps"][2]["reason"] = "3 failed calls"
        text = run.format_ladders({"convergence/udp": [found], "sipp-uas/tcp": [
            {"error": "RuntimeError: no sipp"}]})
        self.assertIn("convergence UDP run 1 -> 200: 100 held, 200 held, "
                      "400 FAILED (3 failed calls)", text)
        self.assertIn("sipp-uas TCP run 1: ERROR RuntimeError: no sipp", text)

    def test_table_layout(self) -> None:
        rows = [run.Row("logins/s", "logins/s", "higher", 500.0, 250.0, (55.0, 92.0)),
                run.Row("  latency", "ms", "lower", 3.0, None, show_cpu=False)]
        lines = run.format_table(rows).splitlines()
        self.assertEqual(lines[0].split(" | "),
                         ["figure".ljust(len(lines[2].split(" | ")[0])), "convergence",
                          "reference", "ratio", "generator CPU %"])
        self.assertTrue(set(lines[1]) <= {"-", "+"})
        self.assertIn("2.00x", lines[2])
        self.assertIn("55 / 92!", lines[2])
        self.assertEqual(len({len(line) for line in lines[:3]}), 1)  # aligned
        markdown = run.format_markdown(rows)
        self.assertIn("| logins/s (logins/s, higher is better) | 500 | 250 | 2.00x |",
                      markdown)

    def test_select(self) -> None:
        every = run.figures(run.Plan())
        sip = ["sip", "sip_tcp", "sip_register_md5", "sip_register_sha256",
               "sip_contacts_10000", "sip_contacts_100000", "sip_dialogs_10000", "sip_builtin"]
        self.assertEqual([f.name for f in run.select(every, "sip")], sip)
        self.assertEqual([f.name for f in run.select(every, "idle")],
                         ["idle_1000", "idle_5000"])
        self.assertEqual([f.name for f in run.select(every, "im")],
                         ["roster_login", "offline", "idle_1000_roster"])
        self.assertEqual(run.select(every, "offline")[0].script, run.IMLOAD)
        self.assertEqual([f.name for f in run.select(every, "login_plain,sip")],
                         ["login_plain", *sip])
        self.assertEqual(len(run.select(every, None)), len(every))
        self.assertRaises(SystemExit, run.select, every, "nonsense")
        quick = run.figures(run.Plan.quick())
        self.assertEqual([f.name for f in run.select(quick, "idle")], ["idle_1000"])


class S2SFigureTests(SynchronousTestCase):
    def test_s2s_figure(self) -> None:
        """--only s2s picks the federation row (in the xmpp group too): the
        same pairs, window and TLS settings as the throughput row, users on
        both servers, a latency p50 row."""
        plan = run.Plan()
        every = run.figures(plan)
        (figure,) = run.select(every, "s2s")
        self.assertEqual((figure.kind, figure.mode, figure.metric),
                         ("s2s", "s2s", "messages_per_s"))
        self.assertIn(figure, run.select(every, "xmpp"))
        self.assertTrue(figure.reference)
        self.assertEqual(figure.settings.users, plan.s2s_pairs)
        self.assertTrue(figure.settings.require_tls)
        args = list(figure.load_args)
        self.assertEqual(args[args.index("--pairs") + 1], str(plan.s2s_pairs))
        self.assertEqual(args[args.index("--window") + 1], str(plan.window))
        self.assertIn("--tls", args)
        self.assertIn("latency_p50_ms", [m for m, *_ in figure.extra_rows])
        self.assertGreater(run.xmpp_timeout(figure, plan),
                           plan.throughput_duration + plan.s2s_warmup)
        rows, summary = run.rows_for(figure, {
            "convergence": [xmpp_report(0, 7, messages_per_s=2000, latency_p50_ms=100)],
            "reference": [xmpp_report(0, 8, messages_per_s=1600, latency_p50_ms=125)]})
        self.assertEqual(summary["ratio"], 1.25)
        self.assertEqual(rows[1].ratio, 0.8)

    def test_prosody_s2s_config(self) -> None:
        """With a hosts file: s2s on 5269 of the server's own address, STARTTLS
        required, dialback over it, the peers resolved by libunbound's
        hoststxt; s2s is no longer disabled."""
        tmp = Path("/tmp/bench-x")
        text = prosody_config(
            XmppSettings(users=5), port=25222, data=tmp / "data", cert=tmp / "c.pem",
            key=tmp / "k.pem", log_file=tmp / "p.log", pidfile=tmp / "p.pid",
            address="127.0.0.41", domain="b.test", s2s_hosts=tmp / "hosts")
        for line in ('interfaces = { "127.0.0.41" }', "s2s_ports = { 5269 }",
                     "s2s_require_encryption = true", "s2s_secure_auth = false",
                     'unbound = { hoststxt = "/tmp/bench-x/hosts" }', 'VirtualHost "b.test"',
                     "modules_disabled = {  }"):
            self.assertIn(line + "\n", text)
        enabled = re.search(r"modules_enabled = \{(.*)\}", text).group(1)
        self.assertIn('"dialback"', enabled)
        self.assertNotIn("dialback", ConfigTests.prosody(None, True))

    def test_federated_pairs_configs(self) -> None:
        """Both pairs: users on each domain, each server on its own loopback
        address naming the other (convergence: [s2s.hosts]; Prosody: the
        hosts file), the convergence configs load with the default policy."""
        with servers.BenchDir() as bench:
            pair = servers.FederatedPair("convergence", bench, XmppSettings(users=2))
            a, b = pair.sender, pair.receiver
            self.assertEqual((a.domain, b.domain), servers.S2S_DOMAINS)
            self.assertNotEqual(a.address, b.address)
            config = load_config(a.config)
            self.assertEqual(config.domains, ("a.test",))
            self.assertEqual(config.interface, a.address)
            self.assertEqual(dict(config.s2s.hosts), {"b.test": f"{b.address}:{b.s2s_port}"})
            for policy in (config.s2s.server_login, config.s2s.login_to_other_server):
                self.assertEqual(policy, S2SPolicy())  # the default: TLS + dialback
                self.assertEqual((policy.tls, policy.dialback), ("required", True))
            self.assertIn("--s2s-port", a.command())
            self.assertEqual(a.command()[a.command().index("--s2s-port") + 1],
                             str(a.s2s_port))
            import sqlite3

            with sqlite3.connect(str(b.data / "convergence.sqlite3")) as db:
                names = sorted(r[0] for r in db.execute("SELECT localpart || '@' || domain "
                                                        "FROM accounts"))
            self.assertEqual(names, ["user1@b.test", "user2@b.test"])
            prosody = servers.FederatedPair("reference", bench, XmppSettings(users=2))
            hosts = (prosody.sender.workdir / "hosts").read_text()
            self.assertIn(f"{prosody.receiver.address} b.test\n", hosts)
            self.assertEqual(prosody.receiver.s2s_port, 5269)
            self.assertTrue((prosody.receiver.data / "b%2etest" / "accounts"
                             / "user2.dat").exists())
            args = run.s2s_load_args(run.select(run.figures(run.Plan()), "s2s")[0], pair)
            self.assertEqual(args[:8], ("--host", a.address, "--domain", "a.test",
                                        "--peer-host", b.address, "--peer-port", str(b.port)))


class ResultsTests(SynchronousTestCase):
    def test_write_results(self) -> None:
        directory = Path(self.mktemp())
        result = {"started": "2026-11-21T02:26:29", "figures": {"x": {"runs": [1, 2]}}}
        first = run.write_results(result, directory)
        second = run.write_results(result, directory)
        self.assertEqual(first.name, "20261121T022629.json")
        self.assertNotEqual(first, second)  # never overwritten
        self.assertEqual(json.loads(first.read_text()), result)

    def test_machine_info(self) -> None:
        machine = run.machine_info()
        for key in ("nproc", "cpu_model", "ram_gib", "kernel", "python", "prosody", "sipp"):
            self.assertIn(key, machine)
        self.assertEqual(machine["nproc"], os.cpu_count())

    def test_results_dir_is_ignored(self) -> None:
        self.assertIn("bench/results/", (ROOT / ".gitignore").read_text().split())


class ConfigTests(SynchronousTestCase):
    def prosody(self, require_tls: bool) -> str:
        tmp = Path("/tmp/bench-x")
        return prosody_config(
            XmppSettings(require_tls=require_tls, iterations=10000, users=5), port=25222,
            data=tmp / "data", cert=tmp / "tls" / "cert.pem", key=tmp / "tls" / "key.pem",
            log_file=tmp / "prosody.log", pidfile=tmp / "prosody.pid")

    def test_prosody_config(self) -> None:
        text = self.prosody(True)
        for line in ('run_as_root = true', 'interfaces = { "127.0.0.1" }',
                     'c2s_ports = { 25222 }', 's2s_ports = { }', 'c2s_direct_tls_ports = { }',
                     'authentication = "internal_hashed"', 'default_iteration_count = 10000',
                     'c2s_require_encryption = true', 'allow_unencrypted_plain_auth = false',
                     'data_path = "/tmp/bench-x/data"', 'log = { warn = "/tmp/bench-x/prosody.log" }',
                     ('ssl = { certificate = "/tmp/bench-x/tls/cert.pem"; '
                      'key = "/tmp/bench-x/tls/key.pem" }'),
                     'network_settings = { nagle = false }', 'VirtualHost "localhost"'):
            self.assertIn(line + "\n", text)
        self.assertIn('modules_disabled = { "s2s"; "s2s_auth_certs" }', text)
        enabled = re.search(r"modules_enabled = \{(.*)\}", text).group(1)
        for module in ("roster", "saslauth", "tls", "disco", "ping", "mam", "carbons",
                       "blocklist"):
            self.assertIn(f'"{module}"', enabled)
        for module in ("limits", "smacks", "offline"):
            self.assertNotIn(f'"{module}"', enabled)

    def test_prosody_config_websocket(self) -> None:
        """A WebSocket figure loads mod_http and mod_websocket on a loopback
        HTTP port, no HTTPS, ws:// counted as secure; the others do not."""
        tmp = Path("/tmp/bench-x")
        text = prosody_config(
            XmppSettings(users=5, websocket=True), port=25222, data=tmp / "data",
            cert=tmp / "c.pem", key=tmp / "k.pem", log_file=tmp / "p.log",
            pidfile=tmp / "p.pid", http_port=25280)
        enabled = re.search(r"modules_enabled = \{(.*)\}", text).group(1)
        self.assertIn('"http"; "websocket"', enabled)
        for line in ("http_ports = { 25280 }", 'http_interfaces = { "127.0.0.1" }',
                     "https_ports = { }", "consider_websocket_secure = true"):
            self.assertIn(line + "\n", text)
        self.assertNotIn("websocket", self.prosody(True))
        self.assertNotIn("http_ports", self.prosody(True))

    def test_prosody_config_stream_management(self) -> None:
        """A stream management figure loads mod_smacks with the settings
        convergence gets too."""
        tmp = Path("/tmp/bench-x")
        text = prosody_config(
            XmppSettings(users=5, stream_management=True), port=25222,
            data=tmp / "data", cert=tmp / "c.pem", key=tmp / "k.pem",
            log_file=tmp / "p.log", pidfile=tmp / "p.pid")
        enabled = re.search(r"modules_enabled = \{(.*)\}", text).group(1)
        self.assertIn('"smacks"', enabled)
        self.assertIn("smacks_max_unacked_stanzas = 5\n", text)
        self.assertIn("smacks_hibernation_time = 300\n", text)
        path = Path(self.mktemp())
        path.write_text(convergence_config(XmppSettings(users=1), Path("/tmp/c.pem"),
                                           Path("/tmp/k.pem")))
        config = load_config(path)
        self.assertEqual((config.xmpp.sm_ack_every, config.xmpp.sm_resume_max,
                          config.xmpp.sm_max_queue), (5, 300.0, 500))
        every = run.figures(run.Plan())
        sm = run.select(every, "sm")
        self.assertEqual([f.name for f in sm], ["throughput_sm", "hibernating_1000"])
        self.assertTrue(all(f.settings.stream_management and "--sm" in f.load_args
                            for f in sm))

    def test_muc_figure(self) -> None:
        """--only muc: the room fan-out row, driven by mucload on both
        servers; Prosody gets a mod_muc component, convergence no flood
        limit (Prosody has no mod_muc_limits)."""
        every = run.figures(run.Plan())
        [muc] = run.select(every, "muc")
        self.assertEqual((muc.name, muc.script, muc.mode, muc.metric),
                         ("muc", run.MUCLOAD, "muc", "delivered_per_s"))
        self.assertTrue(muc.reference and muc.settings.muc)
        self.assertEqual(muc.settings.users, 50)
        self.assertIn("--occupants", muc.load_args)
        self.assertIn(muc, run.select(every, "xmpp"))
        tmp = Path("/tmp/bench-x")
        for settings, present in ((muc.settings, True), (XmppSettings(users=5), False)):
            text = prosody_config(settings, port=25222, data=tmp / "data",
                                  cert=tmp / "c.pem", key=tmp / "k.pem",
                                  log_file=tmp / "p.log", pidfile=tmp / "p.pid")
            self.assertEqual('Component "conference.localhost" "muc"\n' in text, present)
            # the component comes after the VirtualHost's options
            if present:
                self.assertLess(text.index('VirtualHost "localhost"'),
                                text.index("Component"))
                # the room archives, as convergence's rooms do (xmpp.muc_archive)
                self.assertIn('modules_enabled = { "muc_mam" }',
                              text[text.index("Component"):])
        path = Path(self.mktemp())
        path.write_text(convergence_config(muc.settings, Path("/tmp/c.pem"),
                                           Path("/tmp/k.pem")))
        config = load_config(path)
        self.assertEqual(config.xmpp.muc_occupant_rate, 0)
        self.assertTrue(config.xmpp.muc_enabled)
        self.assertEqual(config.xmpp.muc_subdomain + "." + servers.DOMAIN,
                         servers.MUC_DOMAIN)

    def test_prosody_config_plaintext(self) -> None:
        text = self.prosody(False)
        self.assertIn("c2s_require_encryption = false\n", text)
        self.assertIn("allow_unencrypted_plain_auth = true\n", text)

    def test_convergence_config_loads(self) -> None:
        """The generated TOML is a config convergence accepts, with the figure's values."""
        path = Path(self.mktemp())
        for require_tls in (True, False):
            path.write_text(convergence_config(
                XmppSettings(require_tls=require_tls, iterations=10000, users=1),
                Path("/tmp/c.pem"), Path("/tmp/k.pem")))
            tomllib.loads(path.read_text())
            config = load_config(path)
            self.assertEqual(config.xmpp.require_tls, require_tls)
            self.assertEqual(config.xmpp.allow_plain_without_tls, not require_tls)
            self.assertEqual(config.xmpp.scram_iterations, 10000)
            self.assertGreaterEqual(config.xmpp.max_connections_per_ip, 10000)
            self.assertEqual(config.xmpp.max_read_rate, 0)

    def test_split_pem(self) -> None:
        from convergence.tls import generate_self_signed

        cert, key = servers.split_pem(generate_self_signed(["localhost"]))
        self.assertTrue(cert.startswith(b"-----BEGIN CERTIFICATE-----"))
        self.assertIn(b"PRIVATE KEY-----", key.splitlines()[0])
        self.assertNotIn(b"CERTIFICATE", key)


class ProsodyAccountTests(SynchronousTestCase):
    def test_prosodyctl_config(self) -> None:
        """prosodyctl register writes into the template with the figure's
        iteration count and internal_hashed storage."""
        text = servers.prosodyctl_config(Path("/tmp/t/prosody-10000"), 10000)
        self.assertIn('data_path = "/tmp/t/prosody-10000"', text)
        self.assertIn("default_iteration_count = 10000", text)
        self.assertIn('authentication = "internal_hashed"', text)
        self.assertIn('VirtualHost "localhost"', text)

    def test_path_encoding(self) -> None:
        self.assertEqual(servers.prosody_encode("user1"), "user1")
        self.assertEqual(servers.prosody_encode("a.b-c"), "a%2eb%2dc")

    def test_chunks_cover_the_range(self) -> None:
        self.assertEqual(servers._chunks(1, 10, 3), [(1, 4), (5, 8), (9, 10)])
        self.assertEqual(servers._chunks(51, 51, 4), [(51, 51)])


class SipRampTests(SynchronousTestCase):
    def ramp(self, limit: int, rates=(100, 200, 400, 800), refine: int = 1) -> dict:
        def fake(rate: int) -> sipbench.Step:
            ok = rate <= limit
            return sipbench.Step(rate, rate, ok, "" if ok else "x", rate, 0, {}, 0, rate,
                                 1.0, 0.0, 4.0, 1.0, 0.1, 5.0, 10.0, 0)

        return sipbench.find_max_rate(fake, rates, refine)

    def test_stops_at_first_failure_and_refines(self) -> None:
        found = self.ramp(300)
        self.assertEqual([s["rate"] for s in found["steps"]], [100, 200, 400, 300])
        self.assertEqual(found["max_rate"], 300)
        self.assertFalse(found["capped"])
        self.assertEqual(found["best"]["rate"], 300)

    def test_capped_and_none(self) -> None:
        found = self.ramp(10_000)
        self.assertEqual((found["max_rate"], found["capped"]), (800, True))
        found = self.ramp(50)
        self.assertEqual((found["max_rate"], found["capped"], found["best"]), (0, False, None))
        self.assertEqual(len(found["steps"]), 1)

    def test_judge(self) -> None:
        def result(**kw):
            base = {"ok": True, "timed_out": False, "failed": 0, "failures": {},
                    "returncode": 0, "successful": 500, "retransmissions": 0}
            base.update(kw)
            return SimpleNamespace(**base)

        self.assertEqual(sipbench.judge(100, 500, result(), 5.0), (True, "", 100.0))
        ok, reason, _ = sipbench.judge(100, 500, result(retransmissions=6), 5.0)
        self.assertEqual((ok, reason), (False, "6 retransmissions"))
        ok, reason, _ = sipbench.judge(100, 500, result(), 10.0)
        self.assertFalse(ok)
        self.assertIn("50.0 calls/s", reason)
        ok, reason, _ = sipbench.judge(100, 500, result(ok=False, failed=2,
                                                        failures={"MaxUDPRetrans": 2}), 5.0)
        self.assertEqual((ok, reason), (False, "2 failed calls {'MaxUDPRetrans': 2}"))

    def test_rtt_file(self) -> None:
        workdir = Path(self.mktemp())
        workdir.mkdir()
        (workdir / "uac_jabber_123_rtt.csv").write_text(
            "Date_ms;response_time_ms;rtd_no\n16.001;4;1\n24.001;0;1\n32.001;12;1\n")
        times = sipbench.read_rtt(workdir)
        self.assertEqual(times, [0.0, 4.0, 12.0])
        self.assertEqual(sipbench.percentile(times, 50), 4.0)
        self.assertEqual(sipbench.percentile(times, 99), 12.0)

    def test_unchecked_scenario(self) -> None:
        path = sipbench.builtin_uac_scenario(Path(self.mktemp()))
        text = path.read_text(encoding="iso-8859-1")
        self.assertNotIn("check_it", text)
        self.assertNotIn("<Reference", text)
        self.assertIn("INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0", text)
        self.assertIn('<recv response="200" rtd="true">', text)


class SmokeTests(SynchronousTestCase):
    def test_quick_sip_against_convergence(self) -> None:
        """bench/run.py end to end: convergence's SIP at one rate, a table and a JSON file."""
        results = Path(self.mktemp()).resolve()
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "sip_calls",
             "--servers", "convergence", "--sip-rates", "50", "--results-dir", str(results)],
            capture_output=True, text=True, timeout=90, cwd=ROOT, check=False)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("SIP calls/s, zero failures", out.stdout)
        self.assertRegex(out.stdout, r"SIP calls/s, zero failures.*\|\s+>=50 \|\s+- \|")
        files = list(results.glob("*.json"))
        self.assertEqual(len(files), 1)
        data = json.loads(files[0].read_text())
        self.assertEqual(data["servers"], ["convergence"])
        runs = data["figures"]["sip"]["runs"]["convergence"]
        self.assertEqual(len(runs), 1)
        step = runs[0]["steps"][0]
        self.assertEqual((step["rate"], step["ok"], step["failed"]), (50, True, 0))
        self.assertEqual(step["successful"], step["calls"])
        self.assertEqual(data["figures"]["sip_builtin"]["runs"], {})  # reference-only row
        tcp = data["figures"]["sip_tcp"]["runs"]["convergence"][0]
        self.assertEqual((tcp["transport"], tcp["steps"][0]["ok"]), ("tcp", True))
        self.assertIn("SIP rate ladders", out.stdout)
        self.assertRegex(out.stdout, r"convergence UDP run 1 -> >=50: 50 held")

    def test_quick_s2s_both_pairs(self) -> None:
        """bench/run.py --only s2s end to end: a convergence pair and a Prosody
        pair federate on loopback, messages cross and are counted at the
        receiving server, the ratio row is printed."""
        results = Path(self.mktemp()).resolve()
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "s2s",
             "--results-dir", str(results)],
            capture_output=True, text=True, timeout=150, cwd=ROOT, check=False)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"messages/s server to server.*\|\s+[\d,]+ \|\s+[\d,]+ "
                                     r"\|\s+\d+\.\d\dx \|")
        (path,) = results.glob("*.json")
        figure = json.loads(path.read_text())["figures"]["s2s"]
        self.assertEqual(figure["errors"], [])
        for kind in ("convergence", "reference"):
            (report,) = figure["runs"][kind]
            found = report["results"]
            self.assertGreater(found["delivered"], 0, report)
            self.assertEqual((found["lost"], found["errors"]), (0, 0), report)
            self.assertEqual(report["params"]["peer_domain"], "b.test")
        self.assertIsNotNone(figure["summary"]["ratio"])
