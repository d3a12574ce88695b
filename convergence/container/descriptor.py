# -*- test-case-name: tests.test_descriptor -*-
"""
Deployment descriptors: what an application serves and how it logs in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping

PROCESS_STREAM = ("none", "raw", "after_tls", "after_sasl")
TLS_POLICIES = ("required", "optional", "disabled")
SASL_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")


class DescriptorError(ValueError):
    """A deployment descriptor is invalid; raised when it is loaded."""


@dataclass(frozen=True)
class LoginConfig:
    """
    The patent's login configuration for one kind of stream.

    @ivar process_stream: at which point the application's connection
        listener sees the stream open: C{none}, C{raw} (as received),
        C{after_tls} or C{after_sasl}.
    @ivar tls: C{required}, C{optional} or C{disabled}.
    @ivar sasl: mechanisms offered, in preference order.
    @ivar bind: whether resource binding is offered.
    """

    process_stream: str = "none"
    tls: str = "required"
    sasl: tuple[str, ...] = SASL_MECHANISMS
    bind: bool = True

    def __post_init__(self) -> None:
        if self.process_stream not in PROCESS_STREAM:
            raise DescriptorError(
                f"process_stream: {self.process_stream!r} is not one of"
                f" {', '.join(PROCESS_STREAM)}"
            )
        if self.tls not in TLS_POLICIES:
            raise DescriptorError(
                f"tls: {self.tls!r} is not one of {', '.join(TLS_POLICIES)}"
            )
        unknown = [m for m in self.sasl if m not in SASL_MECHANISMS]
        if unknown:
            raise DescriptorError(f"sasl: unknown mechanism {unknown[0]!r}")
        if not self.sasl:
            raise DescriptorError("sasl: at least one mechanism is required")


@dataclass(frozen=True)
class DeploymentDescriptor:
    """
    Declarative description of one application.

    @ivar xmpp: domains or bare JIDs the application owns; C{{domain}} in a
        pattern stands for each of the server's domains.
    @ivar sip: SIP addresses it serves: C{user@{domain}} matches a
        Request-URI's user and host, a bare domain every user of it.
    @ivar http: the context path its HTTP servlet is mounted at (C{/selfhelp}).
    @ivar application_keys: per protocol (C{xmpp}, C{sip}, C{http}), a
        function deriving an application key from an initial request (an
        XMPP C{<thread>}, a SIP C{a=thread}, a URL parameter); requests with
        the same key, from any protocol, join the same ApplicationSession.
    @ivar servlets: the main servlet class per protocol.
    @ivar connection_listener: an C{XmppConnectionListener} class, told of
        stream opens as C{client_login.process_stream} says.
    @ivar session_timeout: seconds of inactivity before an
        ApplicationSession expires.
    @ivar listeners: L{IApplicationSessionListener} classes.
    """

    name: str
    xmpp: tuple[str, ...] = ()
    sip: tuple[str, ...] = ()
    http: str | None = None
    application_keys: Mapping[str, Callable[[Any], Hashable | None]] = field(
        default_factory=dict)
    servlets: Mapping[str, type] = field(default_factory=dict)
    client_login: LoginConfig = LoginConfig()
    server_login: LoginConfig = LoginConfig(bind=False)
    login_to_other_server: LoginConfig = LoginConfig(bind=False)
    connection_listener: type | None = None
    session_timeout: float = 1800.0
    listeners: tuple[type, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise DescriptorError(f"name: {self.name!r} is not a simple name")
        for protocol in ("xmpp", "sip"):
            value = getattr(self, protocol)
            if isinstance(value, str):
                raise DescriptorError(f"{protocol}: expected a list of addresses")
            object.__setattr__(self, protocol, tuple(value))
        for protocol in self.servlets:
            if protocol not in ("xmpp", "sip", "http"):
                raise DescriptorError(f"servlets: unknown protocol {protocol!r}")
        for protocol in self.application_keys:
            if protocol not in ("xmpp", "sip", "http"):
                raise DescriptorError(f"application_keys: unknown protocol {protocol!r}")
        if self.http is not None and (not self.http.startswith("/") or self.http == "/"
                                      or self.http.endswith("/")):
            raise DescriptorError(
                f"http: context path {self.http!r} must look like '/name'")
        if self.session_timeout <= 0:
            raise DescriptorError("session_timeout: must be positive")
