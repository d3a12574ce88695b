# -*- test-case-name: tests.test_http_limits -*-
"""
The HTTP listener service, with a graceful stop.

twisted's C{TCPServer.stopService} only stops listening: open connections,
and the requests on them, are cut when the process exits.  L{HttpListener}
stops listening, then lets the site drain (L{HttpSite.drain}): requests in
progress finish within C{http.shutdown_grace} seconds, idle keep-alive
connections close at once.
"""

from __future__ import annotations

from typing import Any

from twisted.application import internet
from twisted.internet.defer import Deferred, maybeDeferred

from convergence.http.resource import HttpSite


class HttpListener(internet.TCPServer):
    """Serves C{site} on TCP C{port}; stopping it drains the site."""

    def __init__(self, port: int, site: HttpSite, interface: str = "",
                 grace: float | None = None, reactor: Any = None) -> None:
        kwargs: dict[str, Any] = {"interface": interface}
        if reactor is not None:
            kwargs["reactor"] = reactor
        super().__init__(port, site, **kwargs)
        self.site = site
        #: Seconds in-flight requests get; None: the site's C{shutdown_grace}.
        self.grace = grace

    def stopService(self) -> Deferred:
        d = maybeDeferred(super().stopService)
        d.addCallback(lambda _: self.site.drain(self.grace))
        return d
