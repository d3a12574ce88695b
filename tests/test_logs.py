"""
The log observers of C{[log]}: JSON lines (one parseable object per event,
with the event's fields), the level filter, and the twistd plugin options.
"""

from __future__ import annotations

import io
import json

from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from convergence.config import ConfigError, load_config
from convergence.logs import make_observer
from convergence.plugin import Options
from convergence.xmpp.jid import JID


class JsonLogTests(SynchronousTestCase):
    def log(self, format: str, level: str = "info") -> tuple[Logger, io.StringIO]:
        out = io.StringIO()
        return Logger(namespace="convergence.test", observer=make_observer(out, format, level)), out

    def test_one_json_object_per_line(self) -> None:
        """Each event is one line of JSON with the event's own fields, its
        level and namespace, and the formatted text; a failure keeps its
        traceback."""
        log, out = self.log("json")
        log.info("{jid} authenticated with {mechanism}\nover two lines",
                 jid=JID.parse("alice@localhost"), mechanism="PLAIN")
        log.warn("careful")
        try:
            1 / 0
        except ZeroDivisionError:
            log.failure("it broke")
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 3)
        events = [json.loads(line) for line in lines]
        first = events[0]
        self.assertEqual(first["jid"], "alice@localhost")
        self.assertEqual(first["mechanism"], "PLAIN")
        self.assertEqual(first["log_namespace"], "convergence.test")
        self.assertEqual(first["log_level"]["name"], "info")
        self.assertEqual(first["level"], "info")
        self.assertIsInstance(first["log_time"], float)
        self.assertEqual(first["text"],
                         "alice@localhost authenticated with PLAIN\nover two lines")
        self.assertEqual(events[1]["level"], "warn")
        self.assertEqual(events[2]["level"], "critical")
        self.assertIn("ZeroDivisionError", events[2]["text"])
        self.assertIn("log_failure", events[2])

    def test_level_filter(self) -> None:
        """Events below the configured level are dropped, in either format."""
        for format in ("json", "text"):
            log, out = self.log(format, "warn")
            log.debug("per stanza")
            log.info("per login")
            log.error("bad")
            self.assertNotIn("per stanza", out.getvalue())
            self.assertNotIn("per login", out.getvalue())
            self.assertIn("bad", out.getvalue())
        log, out = self.log("text", "debug")
        log.debug("visible")
        self.assertIn("visible", out.getvalue())

    def test_text_format(self) -> None:
        """The text format is twistd's line: timestamp, namespace, message."""
        log, out = self.log("text")
        log.info("hello {who}", who="world")
        self.assertIn("[convergence.test#info] hello world", out.getvalue())


class LogConfigTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        config = load_config()
        self.assertEqual((config.log.format, config.log.level), ("text", "info"))

    def test_twistd_options(self) -> None:
        """--log-format and --log-level override [log]."""
        options = Options()
        options.parseOptions(["--log-format", "json", "--log-level", "warn"])
        config = load_config(None, options.overrides())
        self.assertEqual((config.log.format, config.log.level), ("json", "warn"))

    def test_bad_values(self) -> None:
        for overrides, message in (({"log_format": "xml"}, "log.format"),
                                   ({"log_level": "loud"}, "log.level")):
            with self.assertRaises(ConfigError) as e:
                load_config(None, overrides)
            self.assertIn(message, str(e.exception))


class ApplicationObserverTests(SynchronousTestCase):
    def test_twistd_application_gets_the_observer(self) -> None:
        """The service hands its [log] observer to the twistd application
        it joins (twistd reads ILogObserver from there); a plain parent
        gets nothing."""
        from twisted.application.service import Application, MultiService
        from twisted.logger import ILogObserver

        from convergence.service import make_service

        config = load_config(None, {"data_dir": self.mktemp(), "c2s_port": 0,
                                    "c2s_tls_port": 0, "sip_port": 0, "http_port": 0})
        top = make_service(config)
        self.addCleanup(top.server.close)
        observer = make_observer(io.StringIO(), "json")
        top.log_observer = lambda: observer
        application = Application("convergence")
        top.setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), observer)
        top.disownServiceParent()
        top.setServiceParent(MultiService())  # no components: no error
