# -*- test-case-name: tests.test_muc_service -*-
"""
XEP-0045 Multi-User Chat: chat rooms on C{conference.<domain>}.

  - L{service}: the component (routing, the set of rooms, limits, store);
  - L{room}: one room's occupants and the rules that change them;
  - L{affiliations}: roles, affiliations and who may change them;
  - L{admin}: the muc#admin and muc#owner queries;
  - L{roomconfig} and L{forms}: the muc#roomconfig form;
  - L{history}: discussion history on entering;
  - L{invitations}: mediated invitations;
  - L{relay}: queries between occupants;
  - L{voice}: voice requests;
  - L{flood}: a token bucket per occupant;
  - L{api}: the servlet API;
  - L{disco}: service discovery of the service and its rooms;
  - L{nick}: the nickname profile;
  - L{archive}: the rooms' message archives (XEP-0313);
  - L{register}: registering with a room (7.10).
"""

from __future__ import annotations

from typing import Any

from convergence.xmpp.features import Feature

__all__ = ["ARCHIVE_FEATURE", "FEATURE", "SELF_PING_FEATURE", "STANZA_IDS_FEATURE"]


def install(server: Any) -> None:
    if not server.config.muc_enabled:
        server.muc = None
        return
    from convergence.xmpp.muc.service import MucService

    server.muc = MucService(server)
    server.muc.install()


FEATURE = Feature(
    name="muc", spec="XEP-0045", version="1.35.5", install=install,
    note="the room log is its XEP-0313 archive (status 170), no public HTML logs;"
    " registrations are taken at once (no owner approval)",
)

#: rooms' archives (L{convergence.xmpp.muc.archive}), installed with the service
ARCHIVE_FEATURE = Feature(
    name="muc-mam", spec="XEP-0313", version="1.1.3",
    note="rooms archive their groupchat messages on their bare JIDs (6.1.2),"
    " real JIDs only of non-anonymous rooms",
)
STANZA_IDS_FEATURE = Feature(
    name="muc-stanza-ids", spec="XEP-0359", version="0.7.0",
    note="stanza-id by the room on groupchat messages it archives",
)

SELF_PING_FEATURE = Feature(
    name="muc-self-ping", spec="XEP-0410", version="1.1.0",
)

#: XEP-0249 invitations are messages from one client to another: the
#: server routes them as any message, and CSI never holds them back
DIRECT_INVITES_FEATURE = Feature(
    name="muc-direct-invitations", spec="XEP-0249", version="1.2",
    note="routed between clients as any message; passed at once while a client is inactive",
)
