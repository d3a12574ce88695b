# -*- test-case-name: tests.test_mam -*-
"""
XEP-0313 Message Archive Management for one-to-one chats of local users,
with XEP-0059 paging, XEP-0359 stanza-ids and XEP-0441 preferences.

  - L{rules}: which messages are archived, the stanza-id rules;
  - L{archiver}: messages into archives, at routing time;
  - L{query}: the archive protocol on the user's bare JID;
  - L{form}, L{rsm}, L{prefs}: the XML of queries, pages, preferences;
  - L{expiry}: retention.

The archive lives behind L{IArchiveStore} (C{server.archive_store}).
"""

from __future__ import annotations

from typing import Any

from convergence.store.interfaces import ArchivePrefs
from convergence.xmpp.features import Feature
from convergence.xmpp.mam.archiver import Archiver
from convergence.xmpp.mam.expiry import Retention
from convergence.xmpp.mam.query import ArchiveService
from convergence.xmpp.mam.rules import SID

__all__ = ["FEATURE", "FEATURES", "MAM", "MAM_EXTENDED", "MAM_GROUPCHAT_FIELD", "SID"]

MAM = "urn:xmpp:mam:2"
MAM_EXTENDED = "urn:xmpp:mam:2#extended"
#: the query understands include-groupchat (no groupchat-available: none is kept)
MAM_GROUPCHAT_FIELD = "urn:xmpp:mam:2#groupchat-field"


def install(server: Any) -> None:
    store = server.archive_store
    config = server.config
    archiver = Archiver(server, store, ArchivePrefs(config.mam_default_prefs))
    archiver.install()
    server.archiver = archiver
    # users' archives only: rooms' have their own retention (muc/archive.py)
    retention = Retention(server, store, config.mam_retention, server.hosts)
    service = ArchiveService(server, store, archiver, retention.not_before)
    service.install()
    server.mam = service
    # the sweep starts with the first session (a server that never runs
    # leaves no timer behind) and ends with the server
    server.bus.hook("c2s/bound", lambda _: retention.start(), -10)
    server.bus.hook("xmpp/shutdown", lambda _: retention.stop())


FEATURE = Feature(
    name="mam", spec="XEP-0313", version="1.1.3",
    account_features=(MAM, MAM_EXTENDED, MAM_GROUPCHAT_FIELD, SID), install=install,
    # also on the domain, as Prosody's mod_mam does: clients such as
    # profanity 0.13 look for archiving there before they query their own
    disco_features=(MAM,),
    note="one-to-one messages of local users; no groupchat messages in user archives",
)

#: the specifications MAM brings along, declared for the compliance table
#: (their protocol is installed by L{FEATURE})
STANZA_IDS = Feature(
    name="stanza-ids", spec="XEP-0359", version="0.7.0",
    note="stanza-id on messages archived for local users, spoofed ones removed;"
    " origin-id passed through")
RSM = Feature(
    name="rsm", spec="XEP-0059", version="1.0",
    note="in archive queries: max, after, before (empty: last page), index, count")
PREFS = Feature(
    name="mam-prefs", spec="XEP-0441", version="0.2.0",
    note="the simple preferences of section 2.1; no ad-hoc configuration (2.2, optional)")

FEATURES = (FEATURE, STANZA_IDS, RSM, PREFS)
