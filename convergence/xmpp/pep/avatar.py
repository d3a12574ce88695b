# -*- test-case-name: tests.test_pep -*-
"""
XEP-0084: User Avatar.  The C{urn:xmpp:avatar:data} and
C{urn:xmpp:avatar:metadata} nodes are plain PEP nodes (presence access
by default, so contacts see them and others do not); this module gives
the data node its own item size limit, C{xmpp.pep_max_avatar_size}
(every other node, metadata included, takes C{xmpp.pep_max_item_size}).
"""

from __future__ import annotations

from typing import Any

from convergence.xmpp.features import Feature

__all__ = ["DATA", "FEATURE", "METADATA"]

DATA = "urn:xmpp:avatar:data"
METADATA = "urn:xmpp:avatar:metadata"


def install(server: Any) -> None:
    server.pep.item_limits[DATA] = "pep_max_avatar_size"


FEATURE = Feature(name="avatar", spec="XEP-0084", version="1.1.4", install=install)
