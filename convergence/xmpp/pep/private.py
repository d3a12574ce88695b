# -*- test-case-name: tests.test_pep_private -*-
"""
XEP-0049: Private XML Storage (C{jabber:iq:private}).

A client stores and reads one element per (namespace, element name) of
its own account: a get carries one empty element and is answered with
the stored one (or the empty element echoed), a set stores its elements
together (an empty one removes what was stored).  Other accounts' data
is C{forbidden}; C{jabber:*} namespaces and a set without an element are
C{not-acceptable}, a get without one C{bad-request} (XEP-0049 section
3); an element larger than C{xmpp.private_max_size} bytes is
C{not-acceptable}, a set that would leave more than
C{xmpp.private_max_elements} per account C{resource-constraint}.

Other features may claim one element by registering a handler in
C{server.private.claims[(namespace, name)]}: it gets C{(event, element)}
and answers instead of the store (bookmarks keep C{storage:bookmarks}
in PEP this way).
"""

from __future__ import annotations

from typing import Any, Callable

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp.features import Feature
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result, split_tag

__all__ = ["FEATURE", "PRIVATE", "PrivateStorage"]

PRIVATE = "jabber:iq:private"
_QUERY = f"{{{PRIVATE}}}query"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()


class PrivateStorage:
    """Private XML of every account, in the server's L{IPrivateStore}."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.store = server.pep_store
        self.run_in_db = server.run_in_db
        #: (namespace, name) -> handler(event, element) answering instead
        self.claims: dict[tuple[str, str], Callable[[StanzaEvent, etree._Element], Any]] = {}

    def install(self) -> None:
        hook = self.server.router.hook_iq
        hook("get", "bare", PRIVATE, "query", self.on_query)
        hook("set", "bare", PRIVATE, "query", self.on_query)

    def on_query(self, event: StanzaEvent) -> bool:
        if event.origin is None or event.to != event.sender.bare:
            event.reply_error("forbidden", "only the account's own private data")
            return True
        children = [c for c in event.stanza[0] if isinstance(c.tag, str)]
        if not children:
            # XEP-0049 section 3: a get without an element is "Bad Format"
            # (bad-request), a set without one "Not Acceptable"
            event.reply_error("bad-request" if event.type == "get" else "not-acceptable",
                              "a private query names an element")
            return True
        if event.type == "get" and len(children) != 1:
            event.reply_error("bad-request", "a private get asks for one element")
            return True
        keys = []
        for element in children:
            namespace, name = split_tag(element.tag)
            if not namespace or namespace.startswith("jabber:"):
                event.reply_error("not-acceptable", "jabber:* namespaces are not private data")
                return True
            keys.append((namespace, name))
        claim = self.claims.get(keys[0])
        if claim is not None and len(children) == 1:
            claim(event, children[0])
        elif any(k in self.claims for k in keys):
            event.reply_error("bad-request", f"{keys[0][0]} is stored alone")
        elif event.type == "get":
            self.get(event, *keys[0], children[0])
        else:
            self.set(event, list(zip(keys, children)))
        return True

    def get(self, event: StanzaEvent, namespace: str, name: str,
            element: etree._Element) -> None:
        owner = event.to

        def answer(data: bytes | None) -> None:
            result = iq_result(event.stanza)
            query = etree.SubElement(result, _QUERY, nsmap={None: PRIVATE})
            stored = None
            if data is not None:
                try:
                    stored = etree.fromstring(data, _PARSER)
                except etree.XMLSyntaxError:
                    log.error("unreadable private data {ns} of {owner}", ns=namespace,
                              owner=str(owner))
            query.append(stored if stored is not None else etree.Element(element.tag))
            event.reply(result)

        d = self.run_in_db(self.store.private_data, owner.user, owner.host, namespace, name)
        d.addCallbacks(answer, self._failed, errbackArgs=(event,))

    def set(self, event: StanzaEvent,
            elements: list[tuple[tuple[str, str], etree._Element]]) -> None:
        """Store the elements of one set (all or none)."""
        owner = event.to
        config = self.server.config
        entries = []
        for (namespace, name), element in elements:
            empty = (len(element) == 0 and not (element.text or "").strip()
                     and not element.attrib)
            data = None if empty else etree.tostring(element)
            if data is not None and len(data) > config.private_max_size:
                event.reply_error("not-acceptable", f"private data takes at most"
                                  f" {config.private_max_size} bytes an element")
                return
            entries.append((namespace, name, data))

        def stored(ok: bool) -> None:
            if ok:
                event.reply(iq_result(event.stanza))
            else:
                event.reply_error("resource-constraint",
                                  "the account holds too many private elements")

        d = self.run_in_db(self.store.set_private_data, owner.user, owner.host, entries,
                           config.private_max_elements)
        d.addCallbacks(stored, self._failed, errbackArgs=(event,))

    @staticmethod
    def _failed(failure: Failure, event: StanzaEvent) -> None:
        log.failure("private storage failed", failure)
        event.reply_error("internal-server-error")


def install(server: Any) -> None:
    server.private = PrivateStorage(server)
    server.private.install()


FEATURE = Feature(
    name="private", spec="XEP-0049", version="1.2",
    disco_features=(PRIVATE,), install=install,
)
