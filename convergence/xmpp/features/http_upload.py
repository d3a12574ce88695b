# -*- test-case-name: tests.test_http_upload -*-
"""
XEP-0363: HTTP File Upload, the XMPP side: the upload service
C{upload.<domain>} of each hosted domain.

It is listed in disco#items of the domain; its disco#info has the
C{store/file} identity, the C{urn:xmpp:http:upload:0} feature and the
XEP-0128 form with C{max-file-size}.  A slot request (an iq get with
C{<request filename size content-type/>}) from a local user is answered
with a PUT and a GET URL on the HTTP listener (L{convergence.upload}), or:

  - C{bad-request}: a bad file name, size or content type;
  - C{not-acceptable} with C{<file-too-large><max-file-size/>}: too large;
  - C{resource-constraint} (wait) with C{<retry stamp/>} when known: the
    user's quota is used up;
  - C{forbidden}: the requester is not a user of this server.

The service is active when the server runs one (C{server.http_upload},
set by L{convergence.service.build}: HTTP listener on and
C{http_upload.enabled}); otherwise nothing is offered.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.upload.service import SlotRefused
from convergence.xmpp import ns
from convergence.xmpp.errors import StanzaError, error_reply
from convergence.xmpp.features import Feature
from convergence.xmpp.im.offline import stamp
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result, split_tag

__all__ = ["FEATURE", "UPLOAD", "UploadComponent"]

UPLOAD = "urn:xmpp:http:upload:0"
DATA_FORMS = "jabber:x:data"
#: the first label of the upload service's JID
LABEL = "upload"
NAME = "HTTP File Upload"

log = Logger()


class UploadComponent:
    """Answers the stanzas to C{upload.<domain>}."""

    def __init__(self, server: Any) -> None:
        self.server = server
        #: the upload service's JID -> the domain it serves
        self.domains = {f"{LABEL}.{host}": host for host in server.hosts}

    @property
    def service(self) -> Any:
        return getattr(self.server, "http_upload", None)

    def install(self) -> None:
        # below applications (100): an application may own upload.<domain>
        self.server.bus.hook("pre-stanza", self.on_stanza, 50)
        self.server.disco_items.append(self.items)

    def items(self, host: str) -> list[tuple[str, str | None]]:
        """disco#items of C{host}: its upload service, when there is one."""
        if self.service is None:
            return []
        return [(f"{LABEL}.{host}", NAME)]

    def on_stanza(self, event: StanzaEvent) -> bool:
        to = event.to
        if to.host not in self.domains or self.service is None:
            return False
        if to.user is not None or to.resource is not None \
                or event.kind != "iq" or event.type not in ("get", "set"):
            if event.kind == "message":
                event.reply_error("service-unavailable")
            return True  # presence, results and errors: nothing to do
        payload = event.stanza[0] if len(event.stanza) == 1 else None
        tag = split_tag(payload.tag) if payload is not None else (None, "")
        if event.type == "get" and tag == (ns.DISCO_INFO, "query"):
            self.disco_info(event)
        elif event.type == "get" and tag == (ns.DISCO_ITEMS, "query"):
            self.disco_items(event)
        elif event.type == "get" and tag == (UPLOAD, "request"):
            self.request(event, payload)
        else:
            event.reply_error("service-unavailable")
        return True

    # Discovery
    def disco_info(self, event: StanzaEvent) -> None:
        if event.stanza[0].get("node"):
            event.reply_error("item-not-found")
            return
        result = iq_result(event.stanza)
        query = etree.SubElement(result, f"{{{ns.DISCO_INFO}}}query",
                                 nsmap={None: ns.DISCO_INFO})
        etree.SubElement(query, f"{{{ns.DISCO_INFO}}}identity", category="store",
                         type="file", name=NAME)
        for var in (ns.DISCO_INFO, UPLOAD):
            etree.SubElement(query, f"{{{ns.DISCO_INFO}}}feature", var=var)
        form = etree.SubElement(query, f"{{{DATA_FORMS}}}x", nsmap={None: DATA_FORMS},
                                type="result")
        for var, value, type_ in (("FORM_TYPE", UPLOAD, "hidden"),
                                  ("max-file-size", str(self.service.config.max_file_size),
                                   None)):
            field = etree.SubElement(form, f"{{{DATA_FORMS}}}field", var=var)
            if type_:
                field.set("type", type_)
            etree.SubElement(field, f"{{{DATA_FORMS}}}value").text = value
        event.reply(result)

    def disco_items(self, event: StanzaEvent) -> None:
        result = iq_result(event.stanza)
        etree.SubElement(result, f"{{{ns.DISCO_ITEMS}}}query", nsmap={None: ns.DISCO_ITEMS})
        event.reply(result)

    # Slots
    def request(self, event: StanzaEvent, request: etree._Element) -> None:
        sender = event.sender
        if event.origin is None or sender.user is None or sender.host not in self.server.hosts:
            event.reply_error("forbidden", "Only users of this server may upload files")
            return
        d = self.service.request_slot(sender.user, sender.host, request.get("filename"),
                                      request.get("size"), request.get("content-type"))
        d.addCallbacks(self.granted, self.refused, (event,), None, (event,))

    @staticmethod
    def granted(slot: Any, event: StanzaEvent) -> None:
        result = iq_result(event.stanza)
        element = etree.SubElement(result, f"{{{UPLOAD}}}slot", nsmap={None: UPLOAD})
        etree.SubElement(element, f"{{{UPLOAD}}}put", url=slot.put_url)
        etree.SubElement(element, f"{{{UPLOAD}}}get", url=slot.get_url)
        event.reply(result)

    def refused(self, failure: Failure, event: StanzaEvent) -> None:
        if not failure.check(SlotRefused):
            log.failure("an upload slot for {user} failed", failure, user=str(event.sender))
            event.reply_error("internal-server-error")
            return
        refusal: SlotRefused = failure.value
        if refusal.reason == "too-large":
            error = StanzaError("not-acceptable", refusal.text)
            extra = etree.Element(f"{{{UPLOAD}}}file-too-large", nsmap={None: UPLOAD})
            etree.SubElement(extra, f"{{{UPLOAD}}}max-file-size").text = str(refusal.max_size)
        elif refusal.reason == "quota":
            error = StanzaError("resource-constraint", refusal.text)
            extra = None
            if refusal.retry is not None:
                extra = etree.Element(f"{{{UPLOAD}}}retry", nsmap={None: UPLOAD},
                                      stamp=stamp(refusal.retry).split(".")[0] + "Z")
        else:
            error = StanzaError("bad-request", refusal.text)
            extra = None
        reply = error_reply(event.stanza, error)
        if reply.get("from") is None:
            reply.set("from", str(event.to))
        if extra is not None:
            reply[-1].append(extra)
        self.server.router.route(reply)


def install(server: Any) -> None:
    server.upload_component = UploadComponent(server)
    server.upload_component.install()


FEATURE = Feature(
    name="http_upload", spec="XEP-0363", version="1.2.0", install=install,
    note="upload.<domain> on the HTTP site; HTTPS (XEP-0363 requires it) on"
         " listen.https_port, off by default (or a TLS proxy and http_upload.public_url)."
         " No upload purposes (1.2.0, optional).",
)
