# -*- test-case-name: tests.test_caps -*-
"""
XEP-0115: Entity Capabilities.

The server's side of caps, both ways:

  - its own capabilities, offered after authentication as the stream
    feature C{<c xmlns='http://jabber.org/protocol/caps'/>} whose C{ver}
    hashes the very data the server's disco#info answers with
    (L{convergence.xmpp.features.disco.server_info}); disco#info to the
    caps node C{node#ver} answers with the same data;
  - its clients' capabilities: an available presence of a local client
    carrying C{<c/>} makes the server look the C{(hash, ver)} up in its
    cache, or ask the client (disco#info to its full JID, node C{node#ver}),
    check the answer against the hash (section 5.4) and cache it by
    C{ver}.  Either way the stream's C{client_features} is set and
    C{caps/updated} fires with the stream, for PEP's C{+notify} and the
    like.  An answer that does not hash to its C{ver} is never cached; the
    next client advertising that C{ver} is asked in turn.

The cache lives in memory (C{xmpp.caps_cache_size} entries, least recently
used dropped first) and starts empty on each run: a client is asked once
per C{ver} per run.  The server's disco#info lists the caps feature
(section 7).  Not offered: the caps optimization of section 8.4 (optional:
the server does not strip annotations, so it does not list
C{caps#optimize}), and the legacy format (no C{hash}): ignored.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections import OrderedDict
from typing import Any, Iterable

from lxml import etree
from twisted.logger import Logger

from convergence.xmpp import ns
from convergence.xmpp.features import Feature
from convergence.xmpp.features.disco import DiscoInfo, info_result, server_info
from convergence.xmpp.router import StanzaEvent

log = Logger()

#: the caps node naming this software (section 4: unique per application)
NODE = "urn:convergence:server"
#: the hash of the server's own ver, mandatory to implement (section 9)
HASH = "sha-1"
#: IANA hash names (section 5.1) this server can verify
HASHES = {"sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256",
          "sha-384": "sha384", "sha-512": "sha512"}

_C = f"{{{ns.CAPS}}}c"
_QUERY = f"{{{ns.DISCO_INFO}}}query"
_X = f"{{{ns.DATA_FORMS}}}x"
_FIELD = f"{{{ns.DATA_FORMS}}}field"
_VALUE = f"{{{ns.DATA_FORMS}}}value"
_XML_LANG = f"{{{ns.XML}}}lang"


class IllFormed(ValueError):
    """A disco#info answer section 5.4 calls ill-formed."""


# The verification string (section 5)
def verification_string(info: DiscoInfo) -> str:
    """S of section 5.1: identities, features, then forms, each factor
    followed by C{<}, sorted by octets."""
    def octets(text: str) -> bytes:
        return text.encode("utf-8")

    parts: list[str] = []
    for category, type_, lang, name in sorted(
            info.identities, key=lambda i: tuple(map(octets, i))):
        parts.append(f"{category}/{type_}/{lang}/{name}")
    parts.extend(sorted(info.features, key=octets))
    forms = sorted(info.forms, key=lambda f: octets(_form_type(f) or ""))
    for form in forms:
        parts.append(_form_type(form) or "")
        for var, values in sorted(form, key=lambda field: octets(field[0])):
            if var == "FORM_TYPE":
                continue
            parts.append(var)
            parts.extend(sorted(values, key=octets))
    return "".join(part + "<" for part in parts)


def ver(info: DiscoInfo, hash_name: str = HASH) -> str:
    """The C{ver} attribute: base64 of the hash of S (section 5.1)."""
    digest = hashlib.new(HASHES[hash_name], verification_string(info).encode("utf-8"))
    return base64.b64encode(digest.digest()).decode("ascii")


def _form_type(form: Iterable[tuple[str, tuple[str, ...]]]) -> str | None:
    for var, values in form:
        if var == "FORM_TYPE":
            return values[0] if values else ""
    return None


def _key(advertised: tuple[str, str, str] | None) -> tuple[str, str] | None:
    """(hash, ver) of an advertised (hash, node, ver)."""
    return None if advertised is None else (advertised[0], advertised[2])


def parse_info(query: etree._Element) -> DiscoInfo:
    """
    A disco#info C{<query/>} as L{DiscoInfo}, checked as section 5.4 says:
    duplicate identities, features or FORM_TYPEs, or a FORM_TYPE with
    differing values, raise L{IllFormed}; a form whose FORM_TYPE is missing
    or not hidden is left out.
    """
    identities: list[tuple[str, str, str, str]] = []
    features: list[str] = []
    forms: list[tuple[tuple[str, tuple[str, ...]], ...]] = []
    for child in query:
        if child.tag == f"{{{ns.DISCO_INFO}}}identity":
            identities.append((child.get("category", ""), child.get("type", ""),
                               child.get(_XML_LANG, ""), child.get("name", "")))
        elif child.tag == f"{{{ns.DISCO_INFO}}}feature":
            features.append(child.get("var", ""))
        elif child.tag == _X:
            form = _parse_form(child)
            if form is not None:
                forms.append(form)
    if len(set(identities)) != len(identities):
        raise IllFormed("duplicate identity")
    if len(set(features)) != len(features):
        raise IllFormed("duplicate feature")
    form_types = [_form_type(f) for f in forms]
    if len(set(form_types)) != len(form_types):
        raise IllFormed("two forms with the same FORM_TYPE")
    return DiscoInfo(tuple(identities), tuple(features), tuple(forms))


def _parse_form(x: etree._Element) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    fields: list[tuple[str, tuple[str, ...]]] = []
    hidden_type = False
    for field in x.iter(_FIELD):
        var = field.get("var")
        if var is None:
            continue
        values = tuple(v.text or "" for v in field.iter(_VALUE))
        if var == "FORM_TYPE":
            if len(set(values)) > 1:
                raise IllFormed("FORM_TYPE with differing values")
            hidden_type = field.get("type") == "hidden"
            values = values[:1]
        fields.append((var, values))
    if not hidden_type:
        return None  # no FORM_TYPE, or not hidden: ignored (5.4 3.6)
    return tuple(fields)


class ClientCaps:
    """
    The capabilities of the server's clients: a cache of verified
    C{(hash, ver)} → features, and the disco#info queries in flight.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.size = server.config.caps_cache_size
        self.timeout = server.config.caps_query_timeout
        #: (hash, ver) → the features, most recently used last
        self.cache: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()
        #: the (hash, node, ver) each stream advertised last
        self.advertised: dict[Any, tuple[str, str, str]] = {}
        #: query id → (stream, (hash, node, ver), timeout call)
        self.pending: dict[str, tuple[Any, tuple[str, str, str], Any]] = {}
        #: (hash, ver) → streams waiting for a query to another stream
        self.waiting: dict[tuple[str, str], list[Any]] = {}
        self._own_ver: tuple[Any, str] | None = None

    def install(self) -> None:
        bus = self.server.bus
        bus.hook("presence/outbound", self.on_presence, 10)
        bus.hook("iq/host", self.on_answer, 10)
        bus.hook("c2s/unbound", self.on_unbound)
        self.server.router.hook_iq("get", "host", ns.DISCO_INFO, "query",
                                   self.on_own_node, 10)
        self.server.stream_features.append(self.stream_feature)

    # The server's own
    def own_ver(self) -> str:
        info = server_info(self.server)
        key = (info.features, info.forms)
        if self._own_ver is None or self._own_ver[0] != key:
            self._own_ver = (key, ver(info))
        return self._own_ver[1]

    def stream_feature(self, stream: Any) -> etree._Element:
        c = etree.Element(_C, nsmap={None: ns.CAPS})
        c.set("hash", HASH)
        c.set("node", NODE)
        c.set("ver", self.own_ver())
        return c

    def on_own_node(self, event: StanzaEvent) -> bool:
        """disco#info to C{node#ver} of the server's own caps."""
        node = event.stanza[0].get("node")
        if node != f"{NODE}#{self.own_ver()}":
            return False
        event.reply(info_result(event.stanza, server_info(self.server), node))
        return True

    # Clients'
    def on_presence(self, event: StanzaEvent) -> bool:
        stream = event.origin
        if stream.jid is None or event.stanza.get("to") is not None:
            return False
        if event.type == "unavailable":
            self.withdraw(stream)
            stream.client_features = None
            return False
        if event.type is not None:
            return False
        c = event.stanza.find(_C)
        if c is None:
            return False  # no annotation this time: what was known stays
        hash_name, node, ver_ = c.get("hash"), c.get("node"), c.get("ver")
        if not hash_name or not node or not ver_:
            return False  # the legacy format (no hash) is not processed
        advertised = (hash_name, node, ver_)
        if self.advertised.get(stream) == advertised:
            return False
        self.withdraw(stream)  # one query per client at most
        self.advertised[stream] = advertised
        known = self.cache.get((hash_name, ver_))
        if known is not None:
            self.cache.move_to_end((hash_name, ver_))
            self._apply(stream, known)
        elif hash_name in HASHES and (hash_name, ver_) in self.waiting:
            self.waiting[(hash_name, ver_)].append(stream)
        else:
            if hash_name in HASHES:
                self.waiting[(hash_name, ver_)] = []
            self._query(stream, advertised)
        return False  # presence goes on to be broadcast

    def _query(self, stream: Any, advertised: tuple[str, str, str]) -> None:
        hash_name, node, ver_ = advertised
        query_id = "caps-" + secrets.token_hex(8)
        iq = etree.Element(f"{{{ns.CLIENT}}}iq", nsmap={None: ns.CLIENT})
        iq.set("type", "get")
        iq.set("id", query_id)
        iq.set("from", stream.jid.host)
        iq.set("to", str(stream.jid))
        etree.SubElement(iq, _QUERY, nsmap={None: ns.DISCO_INFO}).set(
            "node", f"{node}#{ver_}")
        call = self.server.clock.callLater(self.timeout, self._timed_out, query_id)
        self.pending[query_id] = (stream, advertised, call)
        self.server.router.route(iq)

    def on_answer(self, event: StanzaEvent) -> bool:
        if event.kind != "iq" or event.type not in ("result", "error"):
            return False
        entry = self.pending.get(event.stanza.get("id", ""))
        if entry is None:
            return False
        stream, advertised, call = entry
        if stream.jid is None or event.sender != stream.jid:
            return False  # not from the client asked: not an answer
        del self.pending[event.stanza.get("id")]
        if call.active():
            call.cancel()
        hash_name, _, ver_ = advertised
        query = event.stanza.find(_QUERY) if event.type == "result" else None
        features: frozenset[str] | None = None
        if query is not None:
            try:
                info = parse_info(query)
            except IllFormed as e:
                log.info("caps of {jid}: ill-formed disco#info ({why})",
                         jid=str(stream.jid), why=str(e))
            else:
                if hash_name not in HASHES:
                    # Section 5.4 step 2: trusted for this client alone.
                    features = frozenset(info.features)
                elif ver(info, hash_name) == ver_:
                    features = frozenset(info.features)
                    self._cache((hash_name, ver_), features)
                else:
                    log.info("caps of {jid}: disco#info does not hash to {ver}",
                             jid=str(stream.jid), ver=ver_)
        if features is not None and self.advertised.get(stream) == advertised:
            self._apply(stream, features)
        self._next_waiting((hash_name, ver_), features is not None)
        return True

    def _timed_out(self, query_id: str) -> None:
        entry = self.pending.pop(query_id, None)
        if entry is not None:
            hash_name, _, ver_ = entry[1]
            self._next_waiting((hash_name, ver_), False)

    def _next_waiting(self, key: tuple[str, str], verified: bool) -> None:
        """After a query: the streams waiting on the same ver get the
        verified features, or the next of them is asked in turn."""
        waiters = self.waiting.pop(key, None)
        if waiters is None:
            return
        waiters = [s for s in waiters if s.jid is not None
                   and _key(self.advertised.get(s)) == key]
        known = self.cache.get(key)
        if verified and known is not None:
            for stream in waiters:
                self._apply(stream, known)
        elif waiters:
            first, rest = waiters[0], waiters[1:]
            self.waiting[key] = rest
            self._query(first, self.advertised[first])

    def _cache(self, key: tuple[str, str], features: frozenset[str]) -> None:
        self.cache[key] = features
        self.cache.move_to_end(key)
        while len(self.cache) > self.size:
            self.cache.popitem(last=False)

    def _apply(self, stream: Any, features: frozenset[str]) -> None:
        stream.client_features = features
        self.server.bus.fire("caps/updated", stream)

    def withdraw(self, stream: Any) -> None:
        """Forget what C{stream} advertised: it waits for nothing, and a
        query to it is dropped (the next client waiting is asked)."""
        self.advertised.pop(stream, None)
        for waiters in self.waiting.values():
            if stream in waiters:
                waiters.remove(stream)
        for query_id, (asked, advertised, call) in list(self.pending.items()):
            if asked is stream:
                del self.pending[query_id]
                if call.active():
                    call.cancel()
                self._next_waiting((advertised[0], advertised[2]), False)

    def on_unbound(self, stream: Any) -> bool:
        self.withdraw(stream)
        return False


def install(server: Any) -> None:
    caps = ClientCaps(server)
    server.caps = caps
    caps.install()


FEATURE = Feature(
    name="caps", spec="XEP-0115", version="1.6.0", install=install,
    # section 7: an entity supporting caps says so in its disco#info
    disco_features=(ns.CAPS,),
    note="the server's own caps as a stream feature; clients' caps verified"
         " and cached in memory by ver; no caps optimization (section 8.4, optional),"
         " the legacy format (no hash) is ignored",
)
