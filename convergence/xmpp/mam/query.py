# -*- test-case-name: tests.test_mam -*-
"""
The archive protocol on a user's bare JID (XEP-0313 sections 4 and 5,
XEP-0441): queries paged with RSM, the query form, the archive's metadata
and the archiving preferences.  Only the user's own client may use it:
anyone else gets C{forbidden}, and no query reads another archive.

Page sizes: a query without C{<max/>} gets C{xmpp.mam_default_page_size}
messages at most; a larger C{<max/>} than C{xmpp.mam_max_page_size} is
cut to it (XEP-0059 section 2.1 lets the server return fewer), with
C{complete='false'} telling the client to page on.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.store.errors import UnknownArchiveId
from convergence.store.interfaces import (
    ArchivedMessage,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
)
from convergence.xmpp import ns
from convergence.xmpp.im.offline import DELAY, stamp
from convergence.xmpp.jid import JID
from convergence.xmpp.mam.form import BadForm, UnknownField, form_element, parse_form
from convergence.xmpp.mam.prefs import BadPrefs, parse_prefs, prefs_element
from convergence.xmpp.mam.rsm import BadSet, parse_set, set_element
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

__all__ = ["ArchiveService"]

MAM = "urn:xmpp:mam:2"
FORWARD = "urn:xmpp:forward:0"
_FLIP = f"{{{MAM}}}flip-page"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()


class ArchiveService:
    """Answers the archive iqs of one server."""

    def __init__(self, server: Any, store: Any, archiver: Any,
                 not_before: Callable[[], float | None]) -> None:
        """
        @param not_before: the oldest stamp still kept (retention), or
            C{None} when everything is.
        """
        self.server = server
        self.store = store
        self.archiver = archiver
        self.not_before = not_before
        config = server.config
        self.max_page = config.mam_max_page_size
        self.default_page = min(config.mam_default_page_size, self.max_page)

    def install(self) -> None:
        hook = self.server.router.hook_iq
        hook("set", "bare", MAM, "query", self.on_query)
        hook("get", "bare", MAM, "query", self.on_form)
        hook("get", "bare", MAM, "metadata", self.on_metadata)
        hook("get", "bare", MAM, "prefs", self.on_get_prefs)
        hook("set", "bare", MAM, "prefs", self.on_set_prefs)

    @staticmethod
    def _own(event: StanzaEvent) -> bool:
        """Only the user's own client: anyone else is C{forbidden}."""
        if event.origin is None or event.to != event.sender.bare:
            event.reply_error("forbidden", "only the user's own archive")
            return False
        return True

    def _failed(self, failure: Failure, event: StanzaEvent) -> None:
        if failure.check(UnknownArchiveId):
            event.reply_error("item-not-found", "no such message in the archive")
            return
        log.failure("archive request of {owner} failed", failure, owner=str(event.sender))
        event.reply_error("internal-server-error")

    # Queries (section 4)
    def on_query(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        query = event.stanza[0]
        try:
            filters = parse_form(query, self.max_page)
            page = parse_set(query)
        except (BadForm, BadSet) as e:
            event.reply_error("bad-request", str(e))
            return True
        except UnknownField as e:
            event.reply_error("feature-not-implemented", str(e))
            return True
        limit = self.default_page if page.max is None else min(page.max, self.max_page)
        with_jid = filters.with_jid
        request = ArchiveQuery(
            with_jid=None if with_jid is None else str(with_jid.bare),
            with_resource=None if with_jid is None else with_jid.resource,
            start=filters.start, end=filters.end, not_before=self.not_before(),
            after_id=filters.after_id, before_id=filters.before_id, ids=filters.ids,
            page_after=page.after, page_before=page.before, index=page.index,
            limit=limit)
        owner = event.sender.bare
        flip = query.find(_FLIP) is not None
        d = self.server.run_in_db(self.store.find, owner.user, owner.host, request)
        d.addCallback(self._send_page, event, query.get("queryid"), flip)
        d.addErrback(self._failed, event)
        return True

    def _send_page(self, page: ArchivePage, event: StanzaEvent, queryid: str | None,
                   flip: bool) -> None:
        stream = event.origin
        if getattr(stream, "closed", False) or stream.jid is None:
            return  # the client went away meanwhile
        owner = event.sender.bare
        messages = list(reversed(page.messages)) if flip else page.messages
        for message in messages:
            result = self._result(message, owner, event.sender, queryid)
            if result is not None:
                stream.deliver(result)
        iq = iq_result(event.stanza)
        fin = etree.SubElement(iq, f"{{{MAM}}}fin", nsmap={None: MAM},
                               complete="true" if page.complete else "false")
        first = page.messages[0].id if page.messages else None
        last = page.messages[-1].id if page.messages else None
        fin.append(set_element(first, last, page.count, page.first_index))
        event.reply(iq)

    @staticmethod
    def _result(message: ArchivedMessage, owner: JID, to: JID,
                queryid: str | None) -> etree._Element | None:
        """One result: the archived message forwarded with its stamp."""
        try:
            original = etree.fromstring(message.stanza, _PARSER)
        except etree.XMLSyntaxError:
            log.error("unreadable archived message {id} of {owner}", id=message.id,
                      owner=str(owner))
            return None
        out = etree.Element(f"{{{ns.CLIENT}}}message", nsmap={None: ns.CLIENT})
        out.set("from", str(owner))
        out.set("to", str(to))
        out.set("id", secrets.token_hex(8))
        result = etree.SubElement(out, f"{{{MAM}}}result", nsmap={None: MAM},
                                  id=message.id)
        if queryid is not None:
            result.set("queryid", queryid)
        forwarded = etree.SubElement(result, f"{{{FORWARD}}}forwarded",
                                     nsmap={None: FORWARD})
        etree.SubElement(forwarded, f"{{{DELAY}}}delay", nsmap={None: DELAY},
                         stamp=stamp(message.stamp))
        forwarded.append(original)
        return out

    def on_form(self, event: StanzaEvent) -> bool:
        """Section 4.1.5: the fields a query may use."""
        if not self._own(event):
            return True
        iq = iq_result(event.stanza)
        query = etree.SubElement(iq, f"{{{MAM}}}query", nsmap={None: MAM})
        query.append(form_element())
        event.reply(iq)
        return True

    # Metadata (section 5)
    def on_metadata(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        owner = event.sender.bare

        def answer(ends: tuple[ArchivedMessage, ArchivedMessage] | None) -> None:
            iq = iq_result(event.stanza)
            metadata = etree.SubElement(iq, f"{{{MAM}}}metadata", nsmap={None: MAM})
            if ends is not None:
                for name, message in zip(("start", "end"), ends):
                    etree.SubElement(metadata, f"{{{MAM}}}{name}", id=message.id,
                                     timestamp=stamp(message.stamp))
            event.reply(iq)

        d = self.server.run_in_db(self.store.bounds, owner.user, owner.host,
                                  self.not_before())
        d.addCallbacks(answer, self._failed, errbackArgs=(event,))
        return True

    # Preferences (XEP-0441)
    def _reply_prefs(self, event: StanzaEvent, prefs: ArchivePrefs) -> None:
        iq = iq_result(event.stanza)
        iq.append(prefs_element(prefs))
        event.reply(iq)

    def on_get_prefs(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        owner = event.sender.bare
        cached = self.archiver.prefs(owner)
        if cached is not None:
            self._reply_prefs(event, cached)
            return True
        d = self.server.run_in_db(self.store.prefs, owner.user, owner.host)
        d.addCallbacks(lambda p: self._reply_prefs(event, p or self.archiver.default_prefs),
                       self._failed, errbackArgs=(event,))
        return True

    def on_set_prefs(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        try:
            prefs = parse_prefs(event.stanza[0], self.server.config.max_roster_items)
        except BadPrefs as e:
            event.reply_error("bad-request", str(e))
            return True
        owner = event.sender.bare

        def stored(_: Any) -> None:
            self.archiver.use(owner, prefs)
            self._reply_prefs(event, prefs)

        d = self.server.run_in_db(self.store.set_prefs, owner.user, owner.host, prefs)
        d.addCallbacks(stored, self._failed, errbackArgs=(event,))
        return True
