# -*- test-case-name: tests.test_vcard -*-
"""
XEP-0054: vcard-temp, each account's vCard kept by the server.

  - A get to an account's bare JID is answered by the server on the
    account's behalf (never forwarded): the stored vCard.  Without one, the
    account's owner gets an empty C{<vCard/>} (one of the two answers the
    XEP allows for one's own vCard); anyone else gets
    C{service-unavailable}, the answer for an account that does not exist,
    so a vCard get does not reveal which accounts exist (XEP-0054 1.3).
  - A set without C{to} (or to one's own bare JID) replaces the user's
    vCard; a set to anyone else's is C{forbidden}.  A vCard of more than
    C{xmpp.vcard_max_size} bytes, serialized, is C{not-acceptable} (the
    XEP names no error for it: the request cannot succeed as sent, which
    C{resource-constraint}, of type C{wait}, would suggest it might later).
  - Once stored, C{vcard/updated} is fired with a L{VCardUpdated} (for
    avatar conversion, XEP-0398).
"""

from __future__ import annotations

import time
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Callable

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

__all__ = ["FEATURE", "VCARD", "VCardUpdated", "VCards"]

VCARD = "vcard-temp"
_VCARD_TAG = f"{{{VCARD}}}vCard"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()


@dataclass(frozen=True)
class VCardUpdated:
    """Fired as C{vcard/updated}: a user stored a new vCard."""

    owner: JID
    vcard: etree._Element


class VCards:
    """vCard storage and retrieval for one server."""

    def __init__(self, server: Any, now: Callable[[], float] = time.time) -> None:
        self.server = server
        self.store = server.im_store
        self.run_in_db = server.run_in_db
        self.now = now

    def install(self) -> None:
        hook = self.server.router.hook_iq
        hook("get", "bare", VCARD, "vCard", self.on_get)
        hook("set", "bare", VCARD, "vCard", self.on_set)
        hook("set", "host", VCARD, "vCard", self.on_set_host)

    def on_get(self, event: StanzaEvent) -> bool:
        owner = event.to.bare
        own = event.sender.bare == owner

        def answer(data: bytes | None) -> None:
            vcard = None
            if data is not None:
                try:
                    vcard = etree.fromstring(data, _PARSER)
                except etree.XMLSyntaxError:
                    log.error("the stored vCard of {owner} is unreadable", owner=str(owner))
            if vcard is None and not own:
                event.reply_error("service-unavailable")
                return
            result = iq_result(event.stanza)
            if vcard is None:
                vcard = etree.Element(_VCARD_TAG, nsmap={None: VCARD})
            result.append(vcard)
            event.reply(result)

        d = self.run_in_db(self.store.get_vcard, owner.user, owner.host)
        d.addCallbacks(answer, self._failed, errbackArgs=(event, "read"))
        return True

    def on_set(self, event: StanzaEvent) -> bool:
        owner = event.to.bare
        if event.sender.bare != owner:
            event.reply_error("forbidden", "Only the owner may change a vCard")
            return True
        vcard = event.stanza[0]
        data = etree.tostring(vcard)
        limit = self.server.config.vcard_max_size
        if len(data) > limit:
            event.reply_error("not-acceptable", f"The vCard exceeds {limit} bytes")
            return True
        copy = deepcopy(vcard)

        def stored(_: None) -> None:
            event.reply(iq_result(event.stanza))
            self.server.bus.fire("vcard/updated", VCardUpdated(owner, copy))

        d = self.run_in_db(self.store.set_vcard, owner.user, owner.host, data, self.now())
        d.addCallbacks(stored, self._failed, errbackArgs=(event, "store"))
        return True

    def on_set_host(self, event: StanzaEvent) -> bool:
        event.reply_error("forbidden", "The server's vCard cannot be changed")
        return True

    @staticmethod
    def _failed(failure: Failure, event: StanzaEvent, what: str) -> None:
        log.failure("could not {what} the vCard of {owner}", failure, what=what,
                    owner=str(event.to.bare))
        event.reply_error("internal-server-error")


def install(server: Any) -> None:
    server.vcards = VCards(server)
    server.vcards.install()


FEATURE = Feature(
    name="vcard", spec="XEP-0054", version="1.3.0",
    disco_features=(VCARD,), account_features=(VCARD,), install=install,
)
