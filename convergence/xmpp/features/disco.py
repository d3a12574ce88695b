# -*- test-case-name: tests.test_features -*-
"""XEP-0030: Service Discovery, disco#info and disco#items of the server."""

from __future__ import annotations

from typing import Any

from lxml import etree

from convergence.xmpp import ns
from convergence.xmpp.delivery import lookup_failed
from convergence.xmpp.features import Feature
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result


def _info(event: StanzaEvent, category: str, type_: str, features: list[str]) -> bool:
    if event.stanza[0].get("node"):
        event.reply_error("item-not-found")
        return True
    result = iq_result(event.stanza)
    query = etree.SubElement(result, f"{{{ns.DISCO_INFO}}}query",
                             nsmap={None: ns.DISCO_INFO})
    identity = etree.SubElement(query, f"{{{ns.DISCO_INFO}}}identity",
                                category=category, type=type_)
    if category == "server":
        identity.set("name", "convergence")
    for var in features:
        etree.SubElement(query, f"{{{ns.DISCO_INFO}}}feature", var=var)
    event.reply(result)
    return True


def install(server: Any) -> None:
    def host_info(event: StanzaEvent) -> bool:
        return _info(event, "server", "im", server.features.disco_features())

    def account_info(event: StanzaEvent) -> bool:
        def answer(known: bool) -> None:
            if known:
                _info(event, "account", "registered",
                      [ns.DISCO_INFO, *server.features.account_features()])
            else:
                event.reply_error("service-unavailable")

        d = server.account_exists(event.to.user, event.to.host).addCallback(answer)
        d.addErrback(lookup_failed, event)
        return True

    def host_items(event: StanzaEvent) -> bool:
        result = iq_result(event.stanza)
        query = etree.SubElement(result, f"{{{ns.DISCO_ITEMS}}}query",
                                 nsmap={None: ns.DISCO_ITEMS})
        for address in server.container_addresses(event.to.host):
            etree.SubElement(query, f"{{{ns.DISCO_ITEMS}}}item", jid=address)
        event.reply(result)
        return True

    hook = server.router.hook_iq
    hook("get", "host", ns.DISCO_INFO, "query", host_info)
    hook("get", "bare", ns.DISCO_INFO, "query", account_info)
    hook("get", "host", ns.DISCO_ITEMS, "query", host_items)


FEATURE = Feature(
    name="disco", spec="XEP-0030", version="2.5rc3",
    disco_features=(ns.DISCO_INFO, ns.DISCO_ITEMS), install=install,
)
