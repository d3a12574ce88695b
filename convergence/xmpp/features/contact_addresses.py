# -*- test-case-name: tests.test_contact_addresses -*-
"""
XEP-0157: Contact Addresses for XMPP Services.

The C{[xmpp.contact]} table (role = list of URIs, validated when the
configuration loads) becomes a C{http://jabber.org/network/serverinfo}
form in the server's disco#info (and so in its XEP-0115 hash).  Nothing
configured, nothing published.
"""

from __future__ import annotations

from typing import Any

from convergence.xmpp.features import Feature
from convergence.xmpp.features.disco import Form

SERVERINFO = "http://jabber.org/network/serverinfo"


def serverinfo_form(contact: tuple[tuple[str, tuple[str, ...]], ...]) -> Form | None:
    """The serverinfo form for C{(role, uris)} pairs, or C{None} if empty:
    one C{<role>-addresses} field per role, sorted, URIs in their order."""
    fields = sorted((f"{role}-addresses", tuple(uris)) for role, uris in contact if uris)
    if not fields:
        return None
    return (("FORM_TYPE", (SERVERINFO,)), *fields)


def install(server: Any) -> None:
    form = serverinfo_form(server.config.contact)
    if form is not None:
        server.disco_forms.append(lambda: form)


FEATURE = Feature(
    name="contact-addresses", spec="XEP-0157", version="1.1.1", install=install,
)
