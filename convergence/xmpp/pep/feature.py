# -*- test-case-name: tests.test_pep -*-
"""XEP-0163 Personal Eventing Protocol: declaration and installation."""

from __future__ import annotations

from typing import Any

from convergence.xmpp.features import Feature
from convergence.xmpp.pep.protocol import PepProtocol
from convergence.xmpp.pep.remote import RemotePresences
from convergence.xmpp.pep.service import PUBSUB, PepService
from convergence.xmpp.router import StanzaEvent

#: XEP-0060 features of the service (section 10), as account features
PUBSUB_FEATURES = tuple(f"{PUBSUB}#{name}" for name in (
    "access-open", "access-presence", "access-roster", "access-whitelist",
    "auto-create", "auto-subscribe", "config-node", "create-and-configure",
    "create-nodes", "delete-items", "delete-nodes", "filtered-notifications",
    "item-ids", "last-published", "manage-subscriptions", "persistent-items",
    "presence-notifications", "publish", "publish-options", "purge-nodes",
    "retrieve-affiliations", "retrieve-default", "retrieve-items",
    "retrieve-subscriptions", "subscribe",
))


def install(server: Any) -> None:
    service = PepService(server)
    server.pep = service
    service.remote = RemotePresences(server, service)
    service.remote.install()
    PepProtocol(server, service).install()
    bus = server.bus
    bus.hook("presence/available", service.offer_last)
    bus.hook("caps/updated", service.offer_last)

    def on_outbound(event: StanzaEvent) -> bool:
        if event.stanza.get("to") is None:
            if event.type == "unavailable":
                service.session_ended(event.origin)
        elif event.type == "subscribed" and server.router.is_local(event.to.host):
            # after the presence module has changed the roster (it handles
            # this stanza next): the new contact's last items
            server.clock.callLater(0, service.offer_owner, event.sender.bare,
                                   event.to.bare)
        return False

    def on_unbound(stream: Any) -> None:
        service.session_ended(stream)
        if stream.jid is not None:
            service.forget(stream.jid.bare)

    bus.hook("presence/outbound", on_outbound, 20)
    bus.hook("c2s/unbound", on_unbound)
    bus.hook("account/removed", lambda event: service.account_removed(event.jid))


FEATURE = Feature(
    name="pep", spec="XEP-0163", version="1.2.2",
    account_features=(PUBSUB, *PUBSUB_FEATURES),
    account_identities=(("pubsub", "pep"),),
    install=install,
    note="implied (presence + caps, also of contacts on other servers: their caps"
         " verified by disco#info over s2s) and explicit XEP-0060 subscriptions,"
         " access models enforced",
)

#: the XEP-0060 subset PEP stands on (declared for the compliance table)
PUBSUB_FEATURE = Feature(
    name="pubsub-pep", spec="XEP-0060", version="1.26.0", status="partial",
    note="as PEP needs it: publish, retract, items, create, configure, delete, purge,"
         " subscribe, unsubscribe, subscriptions and affiliations retrieval, managing"
         " subscriptions; no subscription options, no changing affiliations, no"
         " collections",
)

#: publish-options with persist_items and whitelist access, preconditions
PRIVATE_PUBSUB_FEATURE = Feature(name="private-pubsub", spec="XEP-0223", version="1.1.1")
