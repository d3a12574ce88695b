"""
XEP-0163 Personal Eventing Protocol: a XEP-0060 pubsub service on every
account's bare JID, and what stands on it (L{private}: XEP-0049 private
XML storage; L{bookmarks}: XEP-0402 with XEP-0048 compatibility;
L{avatar}: XEP-0084).

Modules: L{forms} (the XEP-0004 forms PEP needs), L{nodeconfig} (a
node's configuration and its form), L{service} (nodes, items, access,
notifications), L{protocol} (the iq requests and disco), L{feature} (the
declaration and installation).

API for other modules
=====================

The feature sets C{server.pep}, a L{service.PepService}.  Every method
returns a Deferred; C{actor=None} (the default) acts as the server,
which may do anything; a JID acts as that requester, with its rights
(failures are L{service.PubsubError}, a L{StanzaError} with XEP-0060's
application condition):

  - C{publish(owner: JID, node: str, item: etree._Element,
    item_id: str | None = None, options: dict[str, list[str]] | None = None)
    -> Deferred[str]}: publish the payload C{item} on the bare JID
    C{owner}'s C{node}, creating the node if needed (C{options}: the
    C{pubsub#…} fields of publish-options, checked as preconditions on an
    existing node); fires with the item id (C{current} on a single-item
    node unless given) after it is stored and notified.
  - C{items(owner, node, max_items=None, ids=None)
    -> Deferred[list[tuple[str, etree._Element]]]}: the node's items,
    oldest first, as C{(item id, payload)}; a missing node has none.
  - C{retract(owner, node, item_id, notify=True)}, C{purge(owner, node)},
    C{delete(owner, node)}, C{configuration(owner, node)} (a
    L{nodeconfig.NodeConfig}), C{configure(owner, node, fields)},
    C{ensure(owner, node, config)} (create or reconfigure as the server).
  - C{item_limits[node] = bytes} (or an XmppConfig key's name): a
    feature's size limit for one node's items.

Bus events: C{pep/published} with a L{service.PepPublished} (C{owner},
C{node}, C{item_id}, C{item}) after every publish, the server's own
included; C{pep/retracted}, C{pep/purged}, C{pep/deleted} with a
L{service.PepChanged} (C{owner}, C{node}, C{item_id} for a retraction).  The service listens to C{presence/available} and
C{caps/updated} (a stream) to send the last published items a resource
newly wants (C{<node>+notify} in C{stream.client_features}).
"""
