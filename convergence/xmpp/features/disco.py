# -*- test-case-name: tests.test_features -*-
"""
XEP-0030: Service Discovery, disco#info and disco#items of the server.

The server's disco#info carries the identity, the features the feature
modules declare and the XEP-0128 extension forms they contribute through
C{server.disco_forms} (each a callable returning a L{Form} or C{None}),
such as XEP-0157's contact addresses.

Every account's bare JID answers disco#info with the identities and
features the features declare for accounts.  A feature answers a query
with a C{node} (or disco#items of an account) by hooking the same event
at a higher priority.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from convergence.xmpp import ns
from convergence.xmpp.delivery import lookup_failed
from convergence.xmpp.features import Feature
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

#: An extension form: its fields as (var, values), C{FORM_TYPE} first.
Form = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class DiscoInfo:
    """
    What a disco#info answer says: identities as (category, type, lang,
    name), feature vars, and XEP-0128 forms (each a tuple of (var,
    values) fields, C{FORM_TYPE} among them).
    """

    identities: tuple[tuple[str, str, str, str], ...]
    features: tuple[str, ...]
    forms: tuple[Form, ...] = ()


def server_info(server: Any) -> DiscoInfo:
    """The server's own disco#info: the one source for the answer to
    disco#info and for the server's XEP-0115 verification string."""
    forms = tuple(f for f in (make() for make in server.disco_forms) if f is not None)
    return DiscoInfo((("server", "im", "", "convergence"),),
                     tuple(server.features.disco_features()), forms)


def account_info(server: Any) -> DiscoInfo:
    """The disco#info of every account's bare JID: account/registered and
    the identities and features the features declare for accounts."""
    extra = tuple((c, t, "", "") for c, t in server.features.account_identities())
    return DiscoInfo((("account", "registered", "", ""), *extra),
                     (ns.DISCO_INFO, *server.features.account_features()))


def info_result(stanza: etree._Element, info: DiscoInfo,
                node: str | None = None) -> etree._Element:
    """The iq result answering C{stanza} with C{info} (for C{node})."""
    result = iq_result(stanza)
    query = etree.SubElement(result, f"{{{ns.DISCO_INFO}}}query",
                             nsmap={None: ns.DISCO_INFO})
    if node is not None:
        query.set("node", node)
    for category, type_, lang, name in info.identities:
        identity = etree.SubElement(query, f"{{{ns.DISCO_INFO}}}identity",
                                    category=category, type=type_)
        if lang:
            identity.set(f"{{{ns.XML}}}lang", lang)
        if name:
            identity.set("name", name)
    for var in info.features:
        etree.SubElement(query, f"{{{ns.DISCO_INFO}}}feature", var=var)
    for form in info.forms:
        x = etree.SubElement(query, f"{{{ns.DATA_FORMS}}}x", nsmap={None: ns.DATA_FORMS},
                             type="result")
        for var, values in form:
            field = etree.SubElement(x, f"{{{ns.DATA_FORMS}}}field", var=var)
            if var == "FORM_TYPE":
                field.set("type", "hidden")
            for value in values:
                etree.SubElement(field, f"{{{ns.DATA_FORMS}}}value").text = value
    return result


def _info(event: StanzaEvent, info: DiscoInfo) -> bool:
    if event.stanza[0].get("node"):
        event.reply_error("item-not-found")
        return True
    event.reply(info_result(event.stanza, info))
    return True


def install(server: Any) -> None:
    def host_info(event: StanzaEvent) -> bool:
        return _info(event, server_info(server))

    def bare_info(event: StanzaEvent) -> bool:
        def answer(known: bool) -> None:
            if known:
                _info(event, account_info(server))
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
        for items in server.disco_items:
            for address, name in items(event.to.host):
                item = etree.SubElement(query, f"{{{ns.DISCO_ITEMS}}}item", jid=address)
                if name:
                    item.set("name", name)
        event.reply(result)
        return True

    hook = server.router.hook_iq
    hook("get", "host", ns.DISCO_INFO, "query", host_info)
    hook("get", "bare", ns.DISCO_INFO, "query", bare_info)
    hook("get", "host", ns.DISCO_ITEMS, "query", host_items)


FEATURE = Feature(
    name="disco", spec="XEP-0030", version="2.5rc3",
    disco_features=(ns.DISCO_INFO, ns.DISCO_ITEMS), install=install,
)
