# -*- test-case-name: tests.test_xmpp_websocket -*-
"""
XEP-0156 discovery over HTTP: C{/.well-known/host-meta} (an XRD document,
RFC 6415) and C{/.well-known/host-meta.json} (its JSON form), listing the
server's alternative connection methods (XMPP over WebSocket).

Both are served with C{Access-Control-Allow-Origin: *} so that a web
client on another origin can read them (XEP-0156 section 3.3).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lxml import etree
from twisted.web.resource import Resource

from convergence.http.resource import ErrorPage

SEGMENT = ".well-known"
XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"

#: C{(rel, href)} pairs, computed per request (the base URL may be set
#: after the site is built).
Links = Callable[[], list[tuple[str, str]]]


def xrd(links: list[tuple[str, str]]) -> bytes:
    """The host-meta XRD document."""
    root = etree.Element(f"{{{XRD}}}XRD", nsmap={None: XRD})
    for rel, href in links:
        etree.SubElement(root, f"{{{XRD}}}Link", rel=rel, href=href)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def jrd(links: list[tuple[str, str]]) -> bytes:
    """The host-meta.json document."""
    return json.dumps({"links": [{"rel": rel, "href": href}
                                 for rel, href in links]}).encode()


class _Document(Resource):
    isLeaf = True

    def __init__(self, links: Links, render_links: Callable[[list[tuple[str, str]]], bytes],
                 content_type: bytes) -> None:
        super().__init__()
        self.links = links
        self.render_links = render_links
        self.content_type = content_type

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", self.content_type)
        request.setHeader(b"access-control-allow-origin", b"*")
        return self.render_links(self.links())

    def render_HEAD(self, request: Any) -> bytes:
        return self.render_GET(request)


class WellKnown(Resource):
    """C{/.well-known/}: host-meta in both forms."""

    def __init__(self, links: Links) -> None:
        super().__init__()
        self.documents = {
            b"host-meta": _Document(links, xrd, b"application/xrd+xml; charset=utf-8"),
            b"host-meta.json": _Document(links, jrd, b"application/json"),
        }

    def getChild(self, path: bytes, request: Any) -> Resource:
        if request.postpath:
            return ErrorPage(404)
        return self.documents.get(path) or ErrorPage(404)

    def render(self, request: Any) -> bytes:
        return ErrorPage(404).render(request)


def install(site: Any, links: Links) -> None:
    """Serve C{/.well-known/host-meta[.json]} on C{site} (an L{HttpSite})."""
    site.root.mount_resource(SEGMENT, WellKnown(links))
