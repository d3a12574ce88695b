"""
Extension points of the container (zope.interface).
"""

from __future__ import annotations

from typing import Sequence

from zope.interface import Attribute, Interface


class IApplicationRouter(Interface):
    """
    Picks the application for an initial request.

    Routing only: a router never holds application logic.
    """

    def select(protocol: str, candidates: Sequence[str]) -> object | None:
        """
        Return the L{Application} serving the first matching candidate.

        @param protocol: C{"xmpp"}, C{"sip"} or C{"http"}.
        @param candidates: addresses of the request's target, most specific
            first (for XMPP: the bare JID, then the domain).
        """


class IProtocolSession(Interface):
    """A protocol-specific point-to-point session inside an application."""

    kind = Attribute("The protocol name: 'xmpp', 'sip' or 'http'.")
    application_session = Attribute("The owning ApplicationSession.")

    def invalidate() -> None:
        """End this protocol session."""


class IApplicationSessionListener(Interface):
    """Told about an ApplicationSession's life; every method is optional."""

    def session_created(session: object) -> None:
        """A new ApplicationSession was created."""

    def session_expiring(session: object) -> None:
        """The session's expiry timer fired; it is about to be invalidated."""

    def session_invalidated(session: object) -> None:
        """The session was invalidated and left the container."""


class IServlet(Interface):
    """The main servlet of an application for one protocol."""

    def init(context: object) -> None:
        """Called once when the application is deployed."""

    def service(request: object, response: object) -> object:
        """Handle one request (response is None) or one response."""

    def destroy() -> None:
        """Called once when the application is undeployed."""
