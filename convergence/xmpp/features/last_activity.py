# -*- test-case-name: tests.test_last_activity -*-
"""
XEP-0012: Last Activity.

  - to a domain: the server's uptime;
  - to an account's bare JID, asked by the user or by a contact allowed to
    see the user's presence (subscription C{from} or C{both} on the user's
    roster): C{0} while a resource is available, otherwise the seconds
    since the last logout with the status of that unavailable presence;
    anyone else gets C{forbidden}, whether the account exists or not;
  - to a full JID: routed to the client like any iq.

Logouts (an unavailable presence, or a lost connection, of an available
resource) are stored in the L{ILastActivityStore} so they survive a
restart.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from twisted.logger import Logger

from convergence.xmpp import ns
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

LAST = "jabber:iq:last"
#: roster subscriptions under which a contact may see the user's presence
_MAY_SEE = ("from", "both")
_STATUS = f"{{{ns.CLIENT}}}status"

log = Logger()


def _result(event: StanzaEvent, seconds: float, text: str | None = None) -> None:
    result = iq_result(event.stanza)
    query = etree.SubElement(result, f"{{{LAST}}}query", nsmap={None: LAST},
                             seconds=str(max(0, int(seconds))))
    if text:
        query.text = text
    event.reply(result)


class LastActivity:
    """Uptime, last logouts and who may know them."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.clock = server.clock
        self.store = server.im_store
        self.started = server.clock.seconds()

    def install(self) -> None:
        hook_iq = self.server.router.hook_iq
        hook_iq("get", "host", LAST, "query", self.on_host)
        hook_iq("get", "bare", LAST, "query", self.on_bare)
        hook = self.server.bus.hook
        # ahead of the presence module, while the stream's presence is known
        hook("presence/outbound", self.on_outbound, 20)
        hook("c2s/closed", self.on_closed, 20)

    # Recording logouts
    def on_outbound(self, event: StanzaEvent) -> bool:
        stream = event.origin
        if event.stanza.get("to") is None and event.type == "unavailable" \
                and getattr(stream, "presence", None) is not None and stream.jid is not None:
            self._record(stream.jid.bare, event.stanza.findtext(_STATUS))
        return False  # the presence module handles it

    def on_closed(self, stream: Any) -> None:
        presence = getattr(stream, "presence", None)
        if presence is None:
            return  # never available, or already logged out
        jid = stream.jid
        if jid is None:  # replaced by a newer stream of the same resource
            try:
                jid = JID.parse(presence.get("from", ""))
            except InvalidJID:
                return
        self._record(jid.bare, None)

    def _record(self, owner: JID, status: str | None) -> None:
        if self.server.guests.is_guest(owner):
            return  # a guest (convergence.xmpp.guests) leaves no trace
        d = self.server.run_in_db(self.store.set_last_logout, owner.user, owner.host,
                                  self.clock.seconds(), status)
        d.addErrback(lambda f: log.failure("could not store the logout of {jid}", f,
                                           jid=str(owner)))

    # Queries
    def on_host(self, event: StanzaEvent) -> bool:
        _result(event, self.clock.seconds() - self.started)
        return True

    def on_bare(self, event: StanzaEvent) -> bool:
        owner = event.to.bare
        asker = event.sender.bare
        if asker == owner:
            self._answer(event, owner)
            return True
        rosters = getattr(self.server, "rosters", None)
        if rosters is None:
            event.reply_error("forbidden")
            return True

        def check(roster: Any) -> None:
            if roster is None:
                event.reply_error("internal-server-error")
                return
            item = roster.items.get(str(asker))
            if item is None or item.subscription not in _MAY_SEE:
                event.reply_error("forbidden", "you may not see this user's presence")
                return
            self._answer(event, owner)

        rosters.use(owner, check)
        return True

    def _answer(self, event: StanzaEvent, owner: JID) -> None:
        if self.server.registry.present(owner):
            _result(event, 0)  # XEP-0012 3: online, an empty query of 0
            return

        def found(last: tuple[float, str | None] | None) -> None:
            if last is None:
                event.reply_error("item-not-found", "no logout is known")
                return
            stamp, status = last
            _result(event, self.clock.seconds() - stamp, status)

        def failed(failure: Any) -> None:
            log.failure("could not read the last logout of {jid}", failure, jid=str(owner))
            event.reply_error("internal-server-error")

        d = self.server.run_in_db(self.store.last_logout, owner.user, owner.host)
        d.addCallbacks(found, failed)


def install(server: Any) -> None:
    server.last_activity = LastActivity(server)
    server.last_activity.install()


FEATURE = Feature(
    name="last-activity", spec="XEP-0012", version="2.0",
    disco_features=(LAST,), account_features=(LAST,), install=install,
)
