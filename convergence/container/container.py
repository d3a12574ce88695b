# -*- test-case-name: tests.test_container -*-
"""
The container: deployed applications, the application router, sessions.

Protocol-neutral: the protocol packages bring requests here; nothing here
imports a protocol package.
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from convergence.container.application import Application, ApplicationContext
from convergence.container.interfaces import IApplicationRouter
from convergence.container.router import DefaultApplicationRouter, RoutingRule
from convergence.container.session import SessionManager


class Container:
    """Applications, their router and their sessions."""

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        applications: Iterable[Application] = (),
        router: IApplicationRouter | None = None,
        domains: Iterable[str] = ("localhost",),
    ) -> None:
        self.clock = clock
        self.domains = tuple(domains)
        #: Per-protocol factories apps use to start things ("sip": SipFactory).
        self.factories: dict[str, Any] = {}
        self.sessions = SessionManager(clock)
        self.applications: dict[str, Application] = {}
        self.router: Any = router or DefaultApplicationRouter()
        for app in applications:
            self.deploy(app)

    def deploy(self, app: Application) -> None:
        """Add an application: routing rules, listeners, servlet C{init}."""
        if app.name in self.applications:
            raise ValueError(f"application {app.name} is already deployed")
        if isinstance(self.router, DefaultApplicationRouter):
            for address in app.xmpp_addresses:
                self.router.add_rule(RoutingRule("xmpp", address, app))
            for address in app.sip_addresses:
                self.router.add_rule(RoutingRule("sip", address, app))
        for listener_class in app.descriptor.listeners:
            self.sessions.add_listener(app.name, listener_class())
        self.applications[app.name] = app
        context = ApplicationContext(
            application=app,
            container=self,
            settings=app.settings,
            domains=self.domains,
            log=Logger(namespace=f"convergence.apps.{app.name}"),
        )
        for servlet in app.servlets.values():
            init = getattr(servlet, "init", None)
            if init is not None:
                init(context)
        self.log.info(
            "deployed application {name} (xmpp: {xmpp}; sip: {sip})",
            name=app.name,
            xmpp=", ".join(app.xmpp_addresses) or "-",
            sip=", ".join(app.sip_addresses) or "-",
        )

    def undeploy_all(self) -> None:
        """Invalidate every session and C{destroy} every servlet."""
        for session in self.sessions.sessions():
            session.invalidate()
        for app in self.applications.values():
            for servlet in app.servlets.values():
                destroy = getattr(servlet, "destroy", None)
                if destroy is not None:
                    try:
                        destroy()
                    except Exception:
                        self.log.failure("destroying {app} failed", app=app.name)
