"""XEP-0398: the vCard PHOTO and the XEP-0084 avatar kept the same, and the
XEP-0153 hash in presence."""

from __future__ import annotations

import base64
import hashlib

from tests.imhelpers import of
from tests.pephelpers import PUBSUB, PepFixture

DATA = "urn:xmpp:avatar:data"
META = "urn:xmpp:avatar:metadata"
UPDATE = "{vcard-temp:x:update}"
V = "{vcard-temp}"
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
HASH = hashlib.sha1(IMAGE).hexdigest()
B64 = base64.b64encode(IMAGE).decode()


class VCardAvatarTests(PepFixture):
    def set_vcard(self, photo: bool = True, name: str = "Alice") -> None:
        inner = (f"<PHOTO><TYPE>image/png</TYPE><BINVAL>{B64}</BINVAL></PHOTO>"
                 if photo else "")
        answer = self.iq(self.alice, "set", f"<vCard xmlns='vcard-temp'><FN>{name}</FN>"
                         f"{inner}</vCard>")
        self.assertEqual(answer.get("type"), "result")

    def pep_items(self, node: str) -> list:
        return self.server.pep.items(self.alice.stream.jid.bare, node).result

    def vcard(self, client=None, owner: str = "alice@localhost"):
        answer = self.iq(client or self.bob, "get", "<vCard xmlns='vcard-temp'/>", to=owner)
        return answer.find(f"{V}vCard")

    def publish_avatar(self, image: bytes, url: str | None = None) -> None:
        digest = hashlib.sha1(image).hexdigest()
        data = base64.b64encode(image).decode()
        self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><publish node='{DATA}'>"
                f"<item id='{digest}'><data xmlns='{DATA}'>{data}</data></item>"
                "</publish></pubsub>")
        extra = f"<info id='other' bytes='9' type='image/gif' url='{url}'/>" if url else ""
        self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><publish node='{META}'>"
                f"<item id='{digest}'><metadata xmlns='{META}'>{extra}"
                f"<info id='{digest}' bytes='{len(image)}' type='image/png'/>"
                "</metadata></item></publish></pubsub>")

    def test_vcard_photo_is_published_on_pep(self) -> None:
        self.set_vcard()
        [(data_id, data)] = self.pep_items(DATA)
        self.assertEqual((data_id, base64.b64decode(data.text)), (HASH, IMAGE))
        [(meta_id, meta)] = self.pep_items(META)
        info = meta.find(f"{{{META}}}info")
        self.assertEqual((meta_id, info.get("id"), info.get("bytes"), info.get("type")),
                         (HASH, HASH, str(len(IMAGE)), "image/png"))
        # the same vCard again publishes nothing new
        self.set_vcard(name="Alice again")
        self.assertEqual(len(self.pep_items(META)), 1)

    def test_pep_avatar_goes_into_the_vcard(self) -> None:
        self.set_vcard(photo=False, name="Alice Liddell")
        other = b"GIF89a" + bytes(50)
        self.publish_avatar(other, url="https://example.org/a.gif")
        vcard = self.vcard()
        self.assertEqual(vcard.findtext(f"{V}FN"), "Alice Liddell")  # kept
        self.assertEqual(base64.b64decode(vcard.findtext(f"{V}PHOTO/{V}BINVAL")), other)
        self.assertEqual(vcard.findtext(f"{V}PHOTO/{V}TYPE"), "image/png")

    def test_empty_metadata_removes_the_photo(self) -> None:
        self.set_vcard()
        self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><publish node='{META}'>"
                f"<item><metadata xmlns='{META}'/></item></publish></pubsub>")
        vcard = self.vcard()
        self.assertIsNone(vcard.find(f"{V}PHOTO"))
        self.assertEqual(vcard.findtext(f"{V}FN"), "Alice")

    def test_wrong_hash_is_not_converted(self) -> None:
        self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><publish node='{DATA}'>"
                f"<item id='{'0' * 40}'><data xmlns='{DATA}'>{B64}</data></item>"
                "</publish></pubsub>")
        self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><publish node='{META}'>"
                f"<item id='{'0' * 40}'><metadata xmlns='{META}'><info id='{'0' * 40}'"
                " bytes='3' type='image/png'/></metadata></item></publish></pubsub>")
        self.assertIsNone(self.vcard(self.alice, "alice@localhost").find(f"{V}PHOTO"))

    def test_presence_carries_the_hash(self) -> None:
        self.set_vcard()
        self.alice.send("<presence><x xmlns='vcard-temp:x:update'/></presence>")
        [seen] = of(self.bob.read(), "presence", **{"from": "alice@localhost/phone"})
        [x] = seen.findall(f"{UPDATE}x")
        self.assertEqual(x.findtext(f"{UPDATE}photo"), HASH)
        # a client's empty <photo/> ("not ready") is left alone
        self.alice.send("<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>")
        [seen] = of(self.bob.read(), "presence", **{"from": "alice@localhost/phone"})
        self.assertEqual(seen.findtext(f"{UPDATE}x/{UPDATE}photo"), "")
        # directed presence too (a MUC join)
        self.alice.send("<presence to='bob@localhost/laptop'/>")
        [seen] = of(self.bob.read(), "presence", **{"from": "alice@localhost/phone"})
        self.assertEqual(seen.findtext(f"{UPDATE}x/{UPDATE}photo"), HASH)

    def test_hash_read_at_bind(self) -> None:
        """A resource that binds later finds the stored avatar's hash."""
        self.set_vcard()
        self.server.vcard_avatars.hashes.clear()
        laptop = self.client("alice", "secret", "laptop")
        laptop.available()
        [seen] = of(self.bob.read(), "presence", **{"from": "alice@localhost/laptop"})
        self.assertEqual(seen.findtext(f"{UPDATE}x/{UPDATE}photo"), HASH)

    def test_account_feature(self) -> None:
        answer = self.iq(self.alice, "get",
                         "<query xmlns='http://jabber.org/protocol/disco#info'/>",
                         to="alice@localhost")
        vars_ = {f.get("var") for f in answer.iter(
            "{http://jabber.org/protocol/disco#info}feature")}
        self.assertIn("urn:xmpp:pep-vcard-conversion:0", vars_)
