# -*- test-case-name: tests.test_xmpp_errors -*-
"""
XMPP stream and stanza errors (RFC 6120 sections 4.9 and 8.3).
"""

from __future__ import annotations

from copy import deepcopy

from lxml import etree

from convergence.xmpp import ns
from convergence.xmpp.stanza import reply_shell

#: RFC 6120 section 4.9.3 stream error conditions.
STREAM_CONDITIONS = frozenset(
    """bad-format bad-namespace-prefix conflict connection-timeout host-gone
    host-unknown improper-addressing internal-server-error invalid-from
    invalid-namespace invalid-xml not-authorized not-well-formed
    policy-violation remote-connection-failed reset resource-constraint
    restricted-xml see-other-host system-shutdown undefined-condition
    unsupported-encoding unsupported-feature unsupported-stanza-type
    unsupported-version""".split()
)

#: RFC 6120 section 8.3.3 stanza error conditions and their usual types.
STANZA_CONDITIONS = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}


class StreamError(Exception):
    """A stream-level error: the stream is closed after sending it."""

    def __init__(self, condition: str, text: str | None = None,
                 app: etree._Element | None = None) -> None:
        """
        @param app: an application-specific condition element (RFC 6120
            4.9.4), such as XEP-0198's C{<handled-count-too-high/>}.
        """
        if condition not in STREAM_CONDITIONS:
            raise ValueError(f"unknown stream error condition {condition!r}")
        super().__init__(condition, text)
        self.condition = condition
        self.text = text
        self.app = app

    def to_element(self) -> etree._Element:
        """The C{<stream:error/>} element."""
        error = etree.Element(f"{{{ns.STREAMS}}}error", nsmap={"stream": ns.STREAMS})
        etree.SubElement(error, f"{{{ns.STREAM_ERRORS}}}{self.condition}",
                         nsmap={None: ns.STREAM_ERRORS})
        if self.text:
            text = etree.SubElement(error, f"{{{ns.STREAM_ERRORS}}}text",
                                    nsmap={None: ns.STREAM_ERRORS})
            text.text = self.text
        if self.app is not None:
            error.append(self.app)
        return error


class StanzaError(Exception):
    """A stanza-level error, answered with an error stanza to the sender."""

    def __init__(
        self, condition: str, text: str | None = None, type: str | None = None
    ) -> None:
        if condition not in STANZA_CONDITIONS:
            raise ValueError(f"unknown stanza error condition {condition!r}")
        super().__init__(condition, text)
        self.condition = condition
        self.text = text
        self.type = type or STANZA_CONDITIONS[condition]

    def to_element(
        self, namespace: str = ns.CLIENT, by: str | None = None
    ) -> etree._Element:
        """The C{<error/>} child of an error stanza in C{namespace}."""
        error = etree.Element(f"{{{namespace}}}error", type=self.type)
        if by:
            error.set("by", by)
        etree.SubElement(error, f"{{{ns.STANZA_ERRORS}}}{self.condition}",
                         nsmap={None: ns.STANZA_ERRORS})
        if self.text:
            text = etree.SubElement(error, f"{{{ns.STANZA_ERRORS}}}text",
                                    nsmap={None: ns.STANZA_ERRORS})
            text.text = self.text
        return error


def may_reply_with_error(stanza: etree._Element) -> bool:
    """
    Whether an error reply may be sent for C{stanza}.

    Never for an error stanza and never for an iq result (RFC 6120 8.3.1).
    """
    kind = etree.QName(stanza).localname
    type_ = stanza.get("type")
    if type_ == "error":
        return False
    return not (kind == "iq" and type_ == "result")


def error_reply(stanza: etree._Element, error: StanzaError) -> etree._Element:
    """
    Build the error stanza answering C{stanza} (RFC 6120 section 8.2).

    The reply swaps C{to} and C{from}, keeps C{id}, and carries the payload of
    an iq so the sender can tell which request failed.
    """
    qname = etree.QName(stanza)
    reply = reply_shell(stanza, "error")
    if qname.localname == "iq" and len(stanza):
        reply.append(deepcopy(stanza[0]))
    reply.append(error.to_element(qname.namespace))
    return reply
