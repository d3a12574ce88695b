# -*- test-case-name: tests.test_plugin -*-
"""
The C{twistd convergence} command line: options and service maker.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer

from convergence.config import ConfigError, load_config
from convergence.logs import make_observer, twistd_log_file


class Options(usage.Options):
    """Options of C{twistd convergence}; every one overrides the config file."""

    synopsis = "[options]"
    longdesc = (
        "Runs the convergence SIP/XMPP/HTTP application server. With no options"
        " it serves the domain localhost on 127.0.0.1 with embedded defaults."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        ["interface", None, None, "IP address to listen on (default 127.0.0.1)."],
        ["c2s-port", None, None, "XMPP client port (default 5222, 0 disables)."],
        ["c2s-tls-port", None, None,
         "XMPP client port with direct TLS, XEP-0368 (default 5223, 0 disables)."],
        ["s2s-port", None, None,
         "XMPP server-to-server port, federation (default 5269, 0 disables)."],
        ["sip-port", None, None, "SIP port (default 5060, 0 disables)."],
        ["http-port", None, None, "HTTP port (default 8080, 0 disables)."],
        ["https-port", None, None, "HTTPS port (default 0: off)."],
        ["data-dir", None, None, "Data directory (default ./convergence-data)."],
        ["log-format", None, None,
         "Log lines as 'text' (default) or 'json' (one JSON object per event)."],
        ["log-level", None, None,
         "Lowest level logged: debug, info (default), warn, error, critical."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["domains"] = []

    def opt_domain(self, domain: str) -> None:
        """A domain to serve (repeatable; replaces the configured list)."""
        self["domains"].append(domain)

    def overrides(self) -> dict[str, Any]:
        """The command-line values as L{load_config} overrides."""
        result: dict[str, Any] = {
            "domains": self["domains"] or None,
            "interface": self["interface"],
            "data_dir": self["data-dir"],
            "log_format": self["log-format"],
            "log_level": self["log-level"],
        }
        for name in ("c2s-port", "c2s-tls-port", "s2s-port", "sip-port", "http-port",
                     "https-port"):
            value = self[name]
            key = name.replace("-", "_")
            if value is not None:
                try:
                    value = int(value)
                except ValueError:
                    raise ConfigError(f"{key}: expected a port number, got {value!r}")
            result[key] = value
        return result


@implementer(IServiceMaker, IPlugin)
class ConvergenceServiceMaker:
    """Makes the convergence service for twistd."""

    tapname = "convergence"
    description = "Converged SIP/XMPP/HTTP application server."
    options = Options

    def makeService(self, options: Options) -> Any:
        from convergence.service import freeze_startup_objects, make_service

        try:
            config = load_config(options["config"], options.overrides(), os.environ)
            service = make_service(config)
        except ConfigError as e:
            sys.stderr.write(f"convergence: configuration error: {e}\n")
            raise SystemExit(2)
        from twisted.internet import reactor

        reactor.callWhenRunning(freeze_startup_objects)  # type: ignore[attr-defined]
        twistd = getattr(options, "parent", None)
        if twistd is None or not twistd.get("syslog"):
            # twistd asks the application for its ILogObserver (unless
            # --logger names one): the [log] format and level
            service.log_observer = lambda: make_observer(
                twistd_log_file(twistd), config.log.format, config.log.level)
        return service
