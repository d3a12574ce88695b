# -*- test-case-name: tests.test_vcard_avatar -*-
"""
XEP-0398: User Avatar to vCard-Based Avatars Conversion.

One avatar, whichever way a client sets it:

- a vCard (XEP-0054) stored with a C{PHOTO} publishes that image on the
  user's XEP-0084 nodes (data, then metadata, item id = SHA-1 of the
  image); a vCard without one disables the PEP avatar;
- a XEP-0084 metadata item pointing at data on the data node puts that
  image into the stored vCard's C{PHOTO} (the other vCard fields stay); an
  empty metadata item removes the C{PHOTO};
- every available presence of the user, broadcast or directed (a MUC
  join), carries the XEP-0153 hash (C{<x xmlns='vcard-temp:x:update'>
  <photo>…</photo></x>}; an empty C{<photo/>} when there is no avatar)
  once the server knows the avatar: it is read when a resource binds and
  kept while the user is online.  A client's own empty C{<photo/>} is
  left alone, as section 4 says; any other C{x} is replaced.

Each direction first compares the image's hash with what the other side
holds, so a conversion never feeds back into itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from lxml import etree
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp.features import Feature
from convergence.xmpp.features.vcard import VCARD, VCardUpdated
from convergence.xmpp.jid import JID
from convergence.xmpp.pep.avatar import DATA, METADATA
from convergence.xmpp.pep.service import PepPublished
from convergence.xmpp.router import StanzaEvent

__all__ = ["CONVERSION", "FEATURE", "UPDATE", "VCardAvatars"]

CONVERSION = "urn:xmpp:pep-vcard-conversion:0"
UPDATE = "vcard-temp:x:update"
_V = f"{{{VCARD}}}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()


def photo_of(vcard: etree._Element | None) -> tuple[bytes, str] | None:
    """The image and media type of a vCard's C{PHOTO/BINVAL}, if any."""
    if vcard is None:
        return None
    photo = vcard.find(f"{_V}PHOTO")
    if photo is None:
        return None
    text = "".join((photo.findtext(f"{_V}BINVAL") or "").split())
    if not text:
        return None
    try:
        image = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return image, (photo.findtext(f"{_V}TYPE") or "image/png").strip()


def image_hash(image: bytes) -> str:
    """The XEP-0084 / XEP-0153 id of an image: hex SHA-1."""
    return hashlib.sha1(image).hexdigest()


def with_photo(vcard: etree._Element | None, image: bytes | None,
               media_type: str = "image/png") -> etree._Element:
    """A copy of C{vcard} (or a new one) whose C{PHOTO} is C{image}
    (removed when None)."""
    out = (etree.fromstring(etree.tostring(vcard), _PARSER) if vcard is not None
           else etree.Element(f"{_V}vCard", nsmap={None: VCARD}))
    for old in out.findall(f"{_V}PHOTO"):
        out.remove(old)
    if image is not None:
        photo = etree.SubElement(out, f"{_V}PHOTO")
        etree.SubElement(photo, f"{_V}TYPE").text = media_type
        etree.SubElement(photo, f"{_V}BINVAL").text = base64.b64encode(image).decode()
    return out


class VCardAvatars:
    """Keeps a user's vCard PHOTO and XEP-0084 avatar the same."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.store = server.im_store
        self.run_in_db = server.run_in_db
        #: the avatar hash of online users ("" = known to have none)
        self.hashes: dict[JID, str] = {}

    def install(self) -> None:
        hook = self.server.bus.hook
        hook("vcard/updated", self.on_vcard)
        hook("pep/published", self.on_published)
        hook("c2s/bound", self.on_bound)
        hook("c2s/unbound", self.on_unbound)
        # before presence.py broadcasts it (priority 0)
        hook("presence/outbound", self.on_presence, 20)

    # Presence (XEP-0153 hash)
    def on_bound(self, stream: Any) -> None:
        owner = stream.jid.bare
        if owner in self.hashes:
            return
        self._vcard(owner).addCallback(self._remember, owner).addErrback(
            self._failed, owner, "read the vCard")

    def _remember(self, vcard: etree._Element | None, owner: JID) -> None:
        if self.server.registry.resources(owner):
            photo = photo_of(vcard)
            self.hashes[owner] = image_hash(photo[0]) if photo else ""

    def on_unbound(self, stream: Any) -> None:
        if stream.jid is not None and not self.server.registry.resources(stream.jid.bare):
            self.hashes.pop(stream.jid.bare, None)

    def on_presence(self, event: StanzaEvent) -> bool:
        stanza = event.stanza
        if stanza.get("type") is not None:
            return False
        known = self.hashes.get(event.sender.bare)
        if known is None:
            return False
        old = stanza.findall(f"{{{UPDATE}}}x")
        if any(x.find(f"{{{UPDATE}}}photo") is not None
               and not (x.findtext(f"{{{UPDATE}}}photo") or "").strip() for x in old):
            return False  # the client says "not ready": left untouched
        for x in old:
            stanza.remove(x)
        x = etree.SubElement(stanza, f"{{{UPDATE}}}x", nsmap={None: UPDATE})
        etree.SubElement(x, f"{{{UPDATE}}}photo").text = known or None
        return False

    # vCard -> PEP
    def on_vcard(self, event: VCardUpdated) -> None:
        owner = event.owner
        photo = photo_of(event.vcard)
        new = image_hash(photo[0]) if photo else ""
        if owner in self.hashes:
            self.hashes[owner] = new
        d = self._current_id(owner)

        def convert(current: str) -> Deferred | None:
            if current == new:
                return None
            pep = self.server.pep
            if photo is None:
                return pep.publish(owner, METADATA, _metadata(None))
            image, media_type = photo
            data = etree.Element(f"{{{DATA}}}data", nsmap={None: DATA})
            data.text = base64.b64encode(image).decode()
            d = pep.publish(owner, DATA, data, new)
            d.addCallback(lambda _: pep.publish(
                owner, METADATA, _metadata((new, len(image), media_type)), new))
            return d

        d.addCallback(convert).addErrback(self._failed, owner, "publish the vCard avatar")

    def _current_id(self, owner: JID) -> Deferred:
        """Deferred: the id of the avatar the metadata node announces ("" none)."""
        def newest(items: list[tuple[str, etree._Element]]) -> str:
            if not items:
                return ""
            info = items[-1][1].find(f"{{{METADATA}}}info")
            return info.get("id", "") if info is not None else ""

        return self.server.pep.items(owner, METADATA).addCallback(newest)

    # PEP -> vCard
    def on_published(self, event: PepPublished) -> None:
        if event.node != METADATA:
            return
        owner = event.owner
        infos = event.item.findall(f"{{{METADATA}}}info")
        if not infos:
            self._set_photo(owner, None, "", "")
            return
        local = [i for i in infos if not i.get("url")]
        if not local:
            return  # the image is elsewhere: only PEP data is converted
        info = local[0]
        wanted = info.get("id", "")
        d = self.server.pep.items(owner, DATA, ids=[wanted])

        def found(items: list[tuple[str, etree._Element]]) -> None:
            if not items:
                return
            try:
                image = base64.b64decode("".join((items[0][1].text or "").split()),
                                         validate=True)
            except (binascii.Error, ValueError):
                return
            if image_hash(image) != wanted:
                return  # an id that is not its image's hash: not ours to trust
            self._set_photo(owner, image, info.get("type", "image/png"), wanted)

        d.addCallback(found).addErrback(self._failed, owner, "read the PEP avatar")

    def _set_photo(self, owner: JID, image: bytes | None, media_type: str,
                   new: str) -> None:
        if owner in self.hashes:
            self.hashes[owner] = new

        def update(vcard: etree._Element | None) -> Deferred | None:
            photo = photo_of(vcard)
            if (image_hash(photo[0]) if photo else "") == new:
                return None
            if vcard is None and image is None:
                return None
            changed = with_photo(vcard, image, media_type)
            data = etree.tostring(changed)
            d = self.run_in_db(self.store.set_vcard, owner.user, owner.host, data,
                               self.server.clock.seconds())
            d.addCallback(lambda _: self.server.bus.fire(
                "vcard/updated", VCardUpdated(owner, changed)))
            return d

        self._vcard(owner).addCallback(update).addErrback(
            self._failed, owner, "update the vCard photo")

    # Helpers
    def _vcard(self, owner: JID) -> Deferred:
        """Deferred: the stored vCard element, or None."""
        def parse(data: bytes | None) -> etree._Element | None:
            if data is None:
                return None
            try:
                return etree.fromstring(data, _PARSER)
            except etree.XMLSyntaxError:
                return None

        if owner.user is None:
            return succeed(None)
        return self.run_in_db(self.store.get_vcard, owner.user, owner.host).addCallback(parse)

    @staticmethod
    def _failed(failure: Failure, owner: JID, what: str) -> None:
        log.failure("avatar conversion: could not {what} of {owner}", failure,
                    what=what, owner=str(owner))


def _metadata(info: tuple[str, int, str] | None) -> etree._Element:
    metadata = etree.Element(f"{{{METADATA}}}metadata", nsmap={None: METADATA})
    if info is not None:
        id_, size, media_type = info
        etree.SubElement(metadata, f"{{{METADATA}}}info", id=id_, bytes=str(size),
                         type=media_type)
    return metadata


def install(server: Any) -> None:
    server.vcard_avatars = VCardAvatars(server)
    server.vcard_avatars.install()


FEATURE = Feature(
    name="vcard-avatar-conversion", spec="XEP-0398", version="1.0.0",
    account_features=(CONVERSION,), install=install,
)

#: XEP-0153's server side: vCards hold the photo (XEP-0054) and the
#: server puts its hash into presence (installed with the conversion)
VCARD_AVATARS = Feature(
    name="vcard-avatars", spec="XEP-0153", version="1.1.1",
    note="server side: the PHOTO in vcard-temp and its hash in presence",
)
