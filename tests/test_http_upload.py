"""
XEP-0363 on StringTransport: the upload service upload.localhost over XMPP
(disco, slots, the XEP's errors) and its HTTP side on an HttpChannel (PUT
checks before the body, bodies beyond http.max_body_size streamed to disk,
GET with its safety headers).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from convergence.config import HttpConfig, HttpUploadConfig
from convergence.container.container import Container
from convergence.http import upload as http_upload
from convergence.http.resource import MountConflict, make_site
from convergence.store.dbthread import run_now
from convergence.store.sqlite_upload import SqliteUploadStore
from convergence.upload.files import FileStore
from convergence.upload.service import UploadService
from convergence.upload.signing import Signer
from tests.imhelpers import ImFixture, of

UP = "urn:xmpp:http:upload:0"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
ERR = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
CONFIG = HttpUploadConfig(max_file_size=4096, quota_per_user=8192, expire_after=3600.0)
#: smaller than the files uploaded: the upload route must lift it
BODY_LIMIT = 1024


class UploadFixture(ImFixture):
    def setUp(self) -> None:
        super().setUp()
        root = Path(self.mktemp())
        root.mkdir(parents=True)
        self.store = SqliteUploadStore(root / "uploads.sqlite3")
        self.addCleanup(self.store.close)
        self.files = FileStore(root / "http_upload")
        self.clock.advance(1_700_000_000)
        self.uploads = UploadService(CONFIG, self.store, self.files, Signer(b"k" * 32),
                                     self.clock, run_now, "http://127.0.0.1:8080")
        self.server.http_upload = self.uploads
        self.site = make_site(Container(self.clock, []), reactor=self.clock,
                              limits=HttpConfig(max_body_size=BODY_LIMIT))
        http_upload.install(self.site, self.uploads)

    # XMPP
    def iq(self, body: str, to: str = "upload.localhost", id_: str = "u1") -> etree._Element:
        self.alice.send(f"<iq type='get' id='{id_}' to='{to}'>{body}</iq>")
        [reply] = of(self.alice.read(), "iq", id=id_)
        return reply

    def request(self, filename: str = "très cool.jpg", size: int | str = 3000,
                content_type: str | None = "image/jpeg") -> etree._Element:
        kind = "" if content_type is None else f" content-type='{content_type}'"
        return self.iq(f"<request xmlns='{UP}' filename='{filename}' size='{size}'{kind}/>")

    def slot(self, *args, **kwargs) -> tuple[str, str]:
        reply = self.request(*args, **kwargs)
        self.assertEqual(reply.get("type"), "result", etree.tostring(reply))
        slot = reply.find(f"{{{UP}}}slot")
        return slot.find(f"{{{UP}}}put").get("url"), slot.find(f"{{{UP}}}get").get("url")

    # HTTP
    def http(self, method: str, url: str, body: bytes = b"",
             headers: dict[str, str] | None = None, length: bool = True) -> StringTransport:
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1:8080"]
        if length:
            head.append(f"Content-Length: {len(body)}")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport()
        channel.makeConnection(transport)
        self.addCleanup(lambda: channel in self.site.channels
                        and channel.connectionLost(Failure(ConnectionDone())))
        channel.dataReceived(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return transport

    @staticmethod
    def status(transport: StringTransport) -> int:
        return int(transport.value().split(b" ", 2)[1])

    @staticmethod
    def response(transport: StringTransport) -> tuple[dict[str, str], bytes]:
        head, _, body = transport.value().partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.decode().lower()] = value.strip().decode()
        return headers, body


class DiscoTests(UploadFixture):
    def test_listed_in_domain_items(self) -> None:
        reply = self.iq(f"<query xmlns='{DISCO_ITEMS}'/>", "localhost")
        items = {i.get("jid"): i.get("name") for i in reply.iter(f"{{{DISCO_ITEMS}}}item")}
        self.assertEqual(items.get("upload.localhost"), "HTTP File Upload")

    def test_not_listed_without_a_service(self) -> None:
        self.server.http_upload = None
        reply = self.iq(f"<query xmlns='{DISCO_ITEMS}'/>", "localhost")
        self.assertNotIn("upload.localhost",
                         [i.get("jid") for i in reply.iter(f"{{{DISCO_ITEMS}}}item")])
        reply = self.request()
        self.assertEqual(reply.get("type"), "error")
        self.assertIsNotNone(reply.find(f".//{ERR}remote-server-not-found"))

    def test_info_with_max_file_size(self) -> None:
        reply = self.iq(f"<query xmlns='{DISCO_INFO}'/>")
        self.assertEqual(reply.get("from"), "upload.localhost")
        query = reply.find(f"{{{DISCO_INFO}}}query")
        identity = query.find(f"{{{DISCO_INFO}}}identity")
        self.assertEqual((identity.get("category"), identity.get("type")), ("store", "file"))
        self.assertIn(UP, [f.get("var") for f in query.iter(f"{{{DISCO_INFO}}}feature")])
        fields = {f.get("var"): f.findtext("{jabber:x:data}value")
                  for f in query.iter("{jabber:x:data}field")}
        self.assertEqual(fields, {"FORM_TYPE": UP, "max-file-size": "4096"})

    def test_other_payloads_and_stanzas(self) -> None:
        reply = self.iq("<ping xmlns='urn:xmpp:ping'/>")
        self.assertIsNotNone(reply.find(f".//{ERR}service-unavailable"))
        self.alice.send("<presence to='upload.localhost'/>")
        self.alice.send("<iq type='result' id='x' to='upload.localhost'/>")
        self.assertEqual(self.alice.read(), [])


class SlotRequestTests(UploadFixture):
    def test_slot(self) -> None:
        put, get = self.slot()
        self.assertRegex(get, r"^http://127\.0\.0\.1:8080/upload/[\w-]{32}/tr%C3%A8s%20cool\.jpg$")
        self.assertTrue(put.startswith(get + "?"))

    def test_too_large(self) -> None:
        """not-acceptable with <file-too-large><max-file-size/> (XEP-0363 section 5)."""
        reply = self.request(size=4097)
        error = reply.find("{jabber:client}error")
        self.assertEqual(error.get("type"), "modify")
        self.assertIsNotNone(error.find(f"{ERR}not-acceptable"))
        self.assertEqual(error.findtext(f"{{{UP}}}file-too-large/{{{UP}}}max-file-size"),
                         "4096")
        self.assertEqual(reply.get("from"), "upload.localhost")
        self.assertIsNotNone(reply.find(f"{{{UP}}}request"))  # the request is echoed

    def test_quota(self) -> None:
        """resource-constraint of type wait, with the time to retry."""
        put, _ = self.slot("a.bin", 4000, None)
        self.assertEqual(self.status(self.http("PUT", put, b"x" * 4000)), 201)
        self.slot("b.bin", 4000, None)
        reply = self.request("c.bin", 1000, None)
        error = reply.find("{jabber:client}error")
        self.assertEqual(error.get("type"), "wait")
        self.assertIsNotNone(error.find(f"{ERR}resource-constraint"))
        self.assertRegex(error.find(f"{{{UP}}}retry").get("stamp"),
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_bad_requests(self) -> None:
        for filename, size, kind in [("../../etc/passwd", 10, None), ("a/b", 10, None),
                                     ("", 10, None), ("..", 10, None),
                                     ("ok.txt", -1, None), ("ok.txt", "ten", None),
                                     ("ok.txt", 10, "no type")]:
            reply = self.request(filename, size, kind)
            self.assertIsNotNone(reply.find(f".//{ERR}bad-request"), (filename, size, kind))
        self.assertEqual(self.store.upload_ids(), set())


class HttpTests(UploadFixture):
    def test_put_then_get_beyond_max_body_size(self) -> None:
        """A 3000-byte file through a 1024-byte body limit, byte for byte,
        with its type, length and safety headers."""
        data = bytes(range(256)) * 11 + b"end"
        put, get = self.slot(size=len(data))
        transport = self.http("PUT", put, data, {"Content-Type": "image/jpeg"})
        self.assertEqual(self.status(transport), 201, transport.value())
        headers, body = self.response(self.http("GET", get, length=False))
        self.assertEqual(body, data)
        self.assertEqual(headers["content-type"], "image/jpeg")
        self.assertEqual(headers["content-length"], str(len(data)))
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertEqual(headers["content-disposition"],
                         "inline; filename*=UTF-8''tr%C3%A8s%20cool.jpg")
        self.assertIn("default-src 'none'", headers["content-security-policy"])
        self.assertEqual(list(self.files.partial.iterdir()), [])
        stored = list(self.files.files.iterdir())
        self.assertEqual([p.name for p in stored], [urlsplit(get).path.split("/")[2]])

    def test_empty_file_and_percent_in_the_name(self) -> None:
        """A zero-byte file; a name with '%', '?' and '#' survives the URL."""
        put, get = self.slot("100% done?#1.txt", 0, "text/plain")
        self.assertTrue(get.endswith("/100%25%20done%3F%231.txt"), get)
        self.assertEqual(self.status(self.http("PUT", put, b"",
                                               {"Content-Type": "text/plain"})), 201)
        headers, body = self.response(self.http("GET", get, length=False))
        self.assertEqual((headers["content-length"], body), ("0", b""))
        self.assertEqual(headers["content-disposition"],
                         "inline; filename*=UTF-8''100%25%20done%3F%231.txt")

    def test_head(self) -> None:
        put, get = self.slot("notes.html", 5, "text/html")
        self.http("PUT", put, b"<b>x", {"Content-Type": "text/html"})  # 4 bytes: refused
        self.assertEqual(self.status(self.http("HEAD", get, length=False)), 404)
        self.assertEqual(self.status(self.http("PUT", put, b"<b>x!",
                                               {"Content-Type": "text/html"})), 201)
        headers, body = self.response(self.http("HEAD", get, length=False))
        self.assertEqual((headers["content-length"], body), ("5", b""))
        self.assertTrue(headers["content-disposition"].startswith("attachment;"))

    def test_refused_before_the_body(self) -> None:
        """Bad signature, wrong length or type, no length: refused from the head."""
        put, _ = self.slot(size=3000)
        for url, headers, length, status in [
                (put.replace("sig=", "sig=x"), {"Content-Type": "image/jpeg",
                                                "Content-Length": "3000"}, False, 403),
                (put, {"Content-Type": "text/html", "Content-Length": "3000"}, False, 415),
                (put, {"Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"},
                 False, 411)]:
            transport = self.http("PUT", url, b"", headers, length)
            self.assertEqual(self.status(transport), status, transport.value())
            self.assertNotIn(b"100 Continue", transport.value())
        transport = self.http("PUT", put, b"x" * 10, {"Content-Type": "image/jpeg",
                                                      "Expect": "100-continue"})
        self.assertEqual(self.status(transport), 400)
        transport = self.http("PUT", put, b"", {"Content-Type": "image/jpeg",
                                                "Content-Length": "3001"}, False)
        self.assertEqual(self.status(transport), 413)
        self.assertEqual(list(self.files.partial.iterdir()), [])

    def test_expired_slot(self) -> None:
        put, _ = self.slot(size=3)
        self.clock.advance(CONFIG.slot_lifetime + 1)
        self.assertEqual(self.status(self.http("PUT", put, b"abc",
                                               {"Content-Type": "image/jpeg"})), 403)

    def test_second_put_conflicts(self) -> None:
        put, get = self.slot(size=3)
        headers = {"Content-Type": "image/jpeg"}
        self.assertEqual(self.status(self.http("PUT", put, b"abc", headers)), 201)
        self.assertEqual(self.status(self.http("PUT", put, b"xyz", headers)), 409)
        self.assertEqual(self.response(self.http("GET", get, length=False))[1], b"abc")

    def test_traversal_and_unknown_paths(self) -> None:
        _, get = self.slot(size=3)
        slot_id = urlsplit(get).path.split("/")[2]
        for path in ["/upload/", "/upload/../etc/passwd", f"/upload/{slot_id}",
                     f"/upload/{slot_id}/other.jpg", f"/upload/{slot_id}/..%2F..%2Fx",
                     "/upload/%2e%2e/%2e%2e", "/upload/" + "A" * 32 + "/x.jpg"]:
            self.assertEqual(self.status(self.http("GET", "http://h" + path,
                                                   length=False)), 404, path)
        # not uploaded yet
        self.assertEqual(self.status(self.http("GET", get, length=False)), 404)
        transport = self.http("PUT", "http://h/upload/../../x?size=1", b"x")
        self.assertEqual(self.status(transport), 404)

    def test_expired_file_not_served(self) -> None:
        put, get = self.slot(size=3)
        self.http("PUT", put, b"abc", {"Content-Type": "image/jpeg"})
        self.clock.advance(CONFIG.expire_after)
        self.assertEqual(self.status(self.http("GET", get, length=False)), 404)
        self.successResultOf(self.uploads.purge())
        self.assertEqual(list(self.files.files.iterdir()), [])

    def test_aborted_upload_leaves_nothing(self) -> None:
        put, get = self.slot(size=3000)
        transport = self.http("PUT", put, b"x" * 100, {"Content-Type": "image/jpeg",
                                                       "Content-Length": "3000"}, False)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(len(list(self.files.partial.iterdir())), 1)
        for channel in list(self.site.channels):
            channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(list(self.files.partial.iterdir()), [])
        self.assertEqual(self.status(self.http("GET", get, length=False)), 404)

    def test_other_requests_keep_the_body_limit(self) -> None:
        transport = self.http("POST", "http://h/elsewhere", b"x" * (BODY_LIMIT + 1))
        self.assertEqual(self.status(transport), 413)

    def test_cors_preflight(self) -> None:
        _, get = self.slot(size=3)
        headers, _ = self.response(self.http("OPTIONS", get, length=False))
        self.assertEqual(headers["access-control-allow-origin"], "*")
        self.assertIn("PUT", headers["access-control-allow-methods"])

    def test_mount_conflict(self) -> None:
        self.assertRaises(MountConflict, self.site.root.mount_resource, "upload", None)


class ServiceWiringTests(SynchronousTestCase):
    """convergence.service builds the upload service from [http_upload]."""

    def build(self, **overrides: Any) -> Any:
        from convergence.config import _from_mapping
        from convergence.service import build

        data = Path(self.mktemp())
        raw: dict[str, Any] = {"data_dir": str(data)}
        raw.update(overrides)
        server = build(_from_mapping(raw), Clock())
        self.addCleanup(server.close)
        return server

    def test_on_by_default_with_a_private_secret(self) -> None:
        server = self.build(http_upload={"public_url": "https://files.example.com/"})
        self.assertIs(server.xmpp.http_upload, server.uploads)
        self.assertEqual(server.uploads.public_base, "https://files.example.com")
        key = server.config.data_dir / "http_upload.key"
        self.assertEqual(stat.S_IMODE(key.stat().st_mode), 0o600)
        self.assertIn("upload", server.http.root.resources)

    def test_off_when_disabled_or_without_http(self) -> None:
        self.assertIsNone(self.build(http_upload={"enabled": False}).uploads)
        self.assertIsNone(self.build(listen={"http_port": 0}).xmpp.http_upload)

    def test_purger_runs_at_start_and_every_interval(self) -> None:
        from convergence.service import UploadPurger

        server = self.build(http_upload={"purge_interval": 60})
        clock = Clock()
        runs: list[int] = []
        self.patch(server.uploads, "purge", lambda: runs.append(1) or succeed(0))
        purger = UploadPurger(server.uploads, clock)
        purger.startService()
        clock.advance(60)
        clock.advance(60)
        purger.stopService()
        clock.advance(600)
        self.assertEqual(len(runs), 3)
