"""
HTTP upload, protocol-neutral parts: the secret, signed URLs, file names
and content types, the upload directory, slots, quotas and expiry.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.auth.accounts import Accounts
from convergence.config import HttpUploadConfig
from convergence.store.dbthread import run_now
from convergence.store.interfaces import IUploadStore, Upload
from convergence.store.sqlite import SqliteAccountStore
from convergence.store.sqlite_upload import SqliteUploadStore
from convergence.upload.files import SLOT_ID, FileStore, new_slot_id
from convergence.upload.names import (
    BadName,
    check_content_type,
    check_filename,
    disposition,
)
from convergence.upload.service import PutRefused, SlotRefused, UploadService
from convergence.upload.signing import Signer, load_secret

CONFIG = HttpUploadConfig(max_file_size=1000, quota_per_user=2500, expire_after=3600.0,
                          slot_lifetime=300.0)


class SecretTests(SynchronousTestCase):
    def test_created_private_once(self) -> None:
        """First start makes a 0600 file; later starts read the same secret."""
        path = Path(self.mktemp())
        first = load_secret(path)
        self.assertEqual(len(first), 32)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual(load_secret(path), first)

    def test_readable_secret_made_private(self) -> None:
        path = Path(self.mktemp())
        load_secret(path)
        os.chmod(path, 0o644)
        load_secret(path)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)

    def test_short_secret_refused(self) -> None:
        path = Path(self.mktemp())
        path.write_text("abcd\n")
        os.chmod(path, 0o600)
        self.assertRaises(ValueError, load_secret, path)


class SignerTests(SynchronousTestCase):
    def test_every_part_is_signed(self) -> None:
        """Changing the path, size, type, expiry or secret breaks the signature."""
        signer = Signer(b"k" * 32)
        parts = ("/upload/id/a.png", 10, "image/png", 1000)
        sig = signer.sign(*parts)
        self.assertTrue(signer.verify(sig, *parts))
        for changed in [("/upload/id/b.png", 10, "image/png", 1000),
                        ("/upload/id/a.png", 11, "image/png", 1000),
                        ("/upload/id/a.png", 10, "text/html", 1000),
                        ("/upload/id/a.png", 10, "image/png", 1001)]:
            self.assertFalse(signer.verify(sig, *changed), changed)
        self.assertFalse(Signer(b"j" * 32).verify(sig, *parts))
        self.assertFalse(signer.verify(sig[:-1], *parts))
        self.assertFalse(signer.verify("é" + sig, *parts))


class NameTests(SynchronousTestCase):
    def test_good_names_kept_intact(self) -> None:
        for name in ["très cool.jpg", "a", "archive.tar.gz", "..hidden", "名前.png",
                     "x" * 255]:
            self.assertEqual(check_filename(name), name)

    def test_bad_names(self) -> None:
        """Separators, traversal, control and bidi characters, blank, too long."""
        for name in [None, "", "   ", ".", "..", "../etc/passwd", "a/b", "a\\b",
                     "..\\..\\boot.ini", "nul\x00", "tab\there", "new\nline",
                     "gpj.\u202eexe", "é" * 128, "\ud800"]:
            self.assertRaises(BadName, check_filename, name)

    def test_content_types(self) -> None:
        self.assertEqual(check_content_type(None), "")
        self.assertEqual(check_content_type("Image/PNG"), "image/png")
        self.assertEqual(check_content_type("text/plain;charset=utf-8"),
                         "text/plain; charset=utf-8")
        self.assertEqual(check_content_type('text/plain ; charset="utf-8" '),
                         'text/plain; charset="utf-8"')
        for bad in ["image", "image/", "/png", "image/png\r\nX-Evil: 1", "a/b; c",
                    "a b/c", "x/" + "y" * 300]:
            self.assertRaises(BadName, check_content_type, bad)

    def test_disposition(self) -> None:
        """Only media and plain text inline; HTML and SVG are attachments."""
        self.assertEqual(disposition("très cool.jpg", "image/jpeg"),
                         "inline; filename*=UTF-8''tr%C3%A8s%20cool.jpg")
        self.assertTrue(disposition("a.txt", "text/plain; charset=utf-8")
                        .startswith("inline;"))
        for kind in ["text/html", "image/svg+xml", "application/octet-stream",
                     "application/javascript"]:
            self.assertTrue(disposition("x", kind).startswith("attachment;"), kind)
        self.assertNotIn('"', disposition('a";b.txt', "text/plain"))


class FileStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.files = FileStore(Path(self.mktemp()))

    def test_slot_ids(self) -> None:
        ids = {new_slot_id() for _ in range(100)}
        self.assertEqual(len(ids), 100)
        self.assertTrue(all(SLOT_ID.fullmatch(i) for i in ids))

    def test_no_client_path_reaches_the_disk(self) -> None:
        for bad in ["../x", "..", "a/b", "", "x" * 31, "x" * 33, "%2e%2e" * 6]:
            self.assertRaises(ValueError, self.files.path, bad)
            self.assertRaises(ValueError, self.files.receive, bad, 10)

    def test_body_streams_to_disk_and_commits_once(self) -> None:
        slot = new_slot_id()
        body = self.files.receive(slot, 10)
        self.assertEqual(body.path.parent, self.files.partial)
        body.write(b"hello")
        body.write(b"world")
        self.assertFalse(body.too_large)
        self.files.commit(body, slot)
        body.close()
        self.assertEqual(self.files.path(slot).read_bytes(), b"helloworld")
        self.assertEqual(list(self.files.partial.iterdir()), [])
        other = self.files.receive(slot, 10)
        other.write(b"x")
        self.assertRaises(FileExistsError, self.files.commit, other, slot)
        other.close()
        self.assertEqual(self.files.path(slot).read_bytes(), b"helloworld")
        self.assertEqual(list(self.files.partial.iterdir()), [])

    def test_too_much_is_not_kept_and_closing_removes(self) -> None:
        body = self.files.receive(new_slot_id(), 4)
        body.write(b"12345")
        self.assertTrue(body.too_large)
        self.assertEqual(body.size, 0)
        body.close()
        self.assertEqual(list(self.files.partial.iterdir()), [])

    def test_sweep(self) -> None:
        known, orphan = new_slot_id(), new_slot_id()
        for slot in (known, orphan):
            self.files.path(slot).write_bytes(b"x")
        stale = self.files.receive(new_slot_id(), 1)
        os.utime(stale.path, (1000, 1000))
        fresh = self.files.receive(new_slot_id(), 1)
        self.assertEqual(self.files.sweep({known}, partial_before=2000), 2)
        self.assertTrue(self.files.exists(known))
        self.assertFalse(self.files.exists(orphan))
        self.assertEqual(list(self.files.partial.iterdir()), [fresh.path])
        fresh.close()
        stale.close()


class ServiceFixture(SynchronousTestCase):
    def setUp(self) -> None:
        root = Path(self.mktemp())
        root.mkdir(parents=True)
        self.accounts = SqliteAccountStore(root / "db")
        self.addCleanup(self.accounts.close)
        Accounts(self.accounts, 4096).add("alice@localhost", "pw")
        self.store = SqliteUploadStore(root / "db")
        self.addCleanup(self.store.close)
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.wall = [1_000_000.0]
        self.files = FileStore(root / "http_upload")
        self.service = UploadService(CONFIG, self.store, self.files, Signer(b"s" * 32),
                                     self.clock, run_now, "http://127.0.0.1:8080",
                                     wall_clock=lambda: self.wall[0])

    def slot(self, name: str = "a.png", size: str = "100", kind: str | None = "image/png"):
        return self.successResultOf(
            self.service.request_slot("alice", "localhost", name, size, kind))

    def refusal(self, name: str = "a.png", size: str = "100",
                kind: str | None = None) -> SlotRefused:
        failure = self.failureResultOf(
            self.service.request_slot("alice", "localhost", name, size, kind), SlotRefused)
        return failure.value

    def put_check(self, url: str, length: int | None, kind: str | None) -> int:
        parts = urlsplit(url)
        slot_id, name = parts.path.split("/")[-2:]
        return self.service.check_put(slot_id, unquote(name), dict(parse_qsl(parts.query)),
                                      length, kind)


class SlotTests(ServiceFixture):
    def test_store_interface(self) -> None:
        verifyObject(IUploadStore, self.store)

    def test_urls(self) -> None:
        """PUT and GET on the listener, the name kept and percent-encoded."""
        slot = self.slot("très cool.jpg", "100", "image/jpeg")
        self.assertRegex(slot.get_url, r"^http://127\.0\.0\.1:8080/upload/[A-Za-z0-9_-]{32}"
                                       r"/tr%C3%A8s%20cool\.jpg$")
        self.assertTrue(slot.put_url.startswith(slot.get_url + "?"))
        self.assertTrue(slot.get_url.isascii())
        upload = self.store.get_upload(slot.upload.id)
        self.assertEqual((upload.filename, upload.size, upload.content_type, upload.uploaded),
                         ("très cool.jpg", 100, "image/jpeg", None))

    def test_public_url(self) -> None:
        self.service.config = HttpUploadConfig(public_url="https://files.example.com/x")
        slot = self.slot()
        self.assertTrue(slot.get_url.startswith("https://files.example.com/x/upload/"))
        self.assertEqual(self.put_check(slot.put_url, 100, "image/png"), 100)

    def test_malformed_requests(self) -> None:
        self.assertEqual(self.refusal(name="../../etc/passwd").reason, "filename")
        self.assertEqual(self.refusal(name=None).reason, "filename")
        for size in [None, "", "-1", "1.5", "1e3", " 10", "０", "9" * 30]:
            self.assertEqual(self.refusal(size=size).reason, "size", size)
        self.assertEqual(self.refusal(kind="not a type").reason, "content-type")
        self.assertEqual(self.store.upload_ids(), set())

    def test_too_large(self) -> None:
        refusal = self.refusal(size="1001")
        self.assertEqual((refusal.reason, refusal.max_size), ("too-large", 1000))
        self.assertEqual(self.slot(size="1000").upload.size, 1000)

    def test_quota_counts_files_and_live_slots(self) -> None:
        """Files and unexpired slots count; expired slots do not."""
        first = self.slot(size="1000")
        self.store.complete_upload(first.upload.id, self.clock.seconds())
        self.slot(size="1000")
        refusal = self.refusal(size="600")
        self.assertEqual(refusal.reason, "quota")
        self.assertEqual(refusal.retry, self.clock.seconds() + CONFIG.expire_after)
        self.slot(size="500")  # exactly up to the quota
        self.clock.advance(CONFIG.slot_lifetime + 1)  # the two slots lapse
        self.slot(size="1000")
        self.assertEqual(self.store.usage("alice", "localhost", self.clock.seconds())[0], 2000)
        self.assertEqual(self.store.usage("bob", "localhost", self.clock.seconds())[0], 0)


class PutCheckTests(ServiceFixture):
    def test_valid(self) -> None:
        slot = self.slot()
        self.assertEqual(self.put_check(slot.put_url, 100, "image/png"), 100)
        self.assertEqual(self.put_check(slot.put_url, 100, "IMAGE/png"), 100)

    def test_wrong_length_type_missing_length(self) -> None:
        slot = self.slot()
        for length, kind, status in [(101, "image/png", 413), (99, "image/png", 400),
                                     (None, "image/png", 411), (100, "text/html", 415),
                                     (100, None, 415), (100, "bad", 415)]:
            with self.assertRaises(PutRefused) as caught:
                self.put_check(slot.put_url, length, kind)
            self.assertEqual(caught.exception.status, status, (length, kind))

    def test_no_type_requested_accepts_any(self) -> None:
        slot = self.slot(kind=None)
        self.assertEqual(slot.upload.content_type, "application/octet-stream")
        self.assertEqual(self.put_check(slot.put_url, 100, "image/png"), 100)
        self.assertEqual(self.put_check(slot.put_url, 100, None), 100)

    def test_tampering_is_403(self) -> None:
        """Another size, type, expiry, name or slot in the URL: 403."""
        slot = self.slot()
        other = self.slot("b.png")
        url = slot.put_url
        for tampered in [url.replace("size=100", "size=1000"),
                         url.replace("type=image%2Fpng", "type=text%2Fhtml"),
                         url.replace("expires=", "expires=9"),
                         url.replace("/a.png?", "/b.png?"),
                         url.replace(slot.upload.id, other.upload.id),
                         url.split("&sig=")[0], url.split("?")[0]]:
            with self.assertRaises(PutRefused) as caught:
                self.put_check(tampered, 1000 if "size=1000" in tampered else 100,
                               "text/html" if "text" in tampered else "image/png")
            self.assertEqual(caught.exception.status, 403, tampered)

    def test_expired_is_403(self) -> None:
        slot = self.slot()
        self.clock.advance(CONFIG.slot_lifetime + 1)
        with self.assertRaises(PutRefused) as caught:
            self.put_check(slot.put_url, 100, "image/png")
        self.assertEqual(caught.exception.status, 403)
        self.assertIn("expired", caught.exception.message)

    def test_already_uploaded_is_409(self) -> None:
        slot = self.slot()
        self.files.path(slot.upload.id).write_bytes(b"x" * 100)
        with self.assertRaises(PutRefused) as caught:
            self.put_check(slot.put_url, 100, "image/png")
        self.assertEqual(caught.exception.status, 409)

    def test_bad_slot_id_is_404(self) -> None:
        with self.assertRaises(PutRefused) as caught:
            self.service.check_put("../../etc", "passwd", {}, 1, None)
        self.assertEqual(caught.exception.status, 404)


class PurgeTests(ServiceFixture):
    def test_expired_files_stale_slots_and_orphans(self) -> None:
        old = self.slot()
        self.store.complete_upload(old.upload.id, self.clock.seconds())
        self.files.path(old.upload.id).write_bytes(b"x")
        unused = self.slot()
        self.clock.advance(CONFIG.expire_after - 10)
        young = self.slot()
        self.store.complete_upload(young.upload.id, self.clock.seconds())
        self.files.path(young.upload.id).write_bytes(b"y")
        orphan = new_slot_id()
        self.files.path(orphan).write_bytes(b"z")
        self.assertFalse(self.service.expired(self.store.get_upload(old.upload.id)))
        self.clock.advance(20)
        self.assertTrue(self.service.expired(self.store.get_upload(old.upload.id)))
        # the unused slot's row is kept SLOT_GRACE past its URL's expiry
        self.assertEqual(self.successResultOf(self.service.purge()), 2)
        self.assertEqual(self.store.upload_ids(), {unused.upload.id, young.upload.id})
        self.assertFalse(self.files.exists(old.upload.id))
        self.assertFalse(self.files.exists(orphan))
        self.assertTrue(self.files.exists(young.upload.id))
        self.clock.advance(CONFIG.slot_lifetime)  # now SLOT_GRACE past its URL's expiry
        self.successResultOf(self.service.purge())
        self.assertEqual(self.store.upload_ids(), {young.upload.id})

    def test_never_expire(self) -> None:
        self.service.config = HttpUploadConfig(expire_after=0)
        slot = self.slot()
        self.store.complete_upload(slot.upload.id, self.clock.seconds())
        self.files.path(slot.upload.id).write_bytes(b"x")
        self.clock.advance(10 ** 9)
        self.successResultOf(self.service.purge())
        self.assertTrue(self.files.exists(slot.upload.id))
        self.assertFalse(self.service.expired(self.store.get_upload(slot.upload.id)))

    def test_account_delete_removes_rows_then_files(self) -> None:
        slot = self.slot()
        self.store.complete_upload(slot.upload.id, self.clock.seconds())
        self.files.path(slot.upload.id).write_bytes(b"x")
        self.accounts.delete("alice", "localhost")
        self.assertIsNone(self.store.get_upload(slot.upload.id))
        self.successResultOf(self.service.purge())
        self.assertFalse(self.files.exists(slot.upload.id))

    def test_upload_record(self) -> None:
        upload = Upload(new_slot_id(), "a", "b", "n", 1, "x/y", 1.0, 2.0)
        self.assertTrue(self.store.add_slot(upload, 0, 0.0))
        self.assertEqual(self.store.get_upload(upload.id), upload)
        self.assertTrue(self.store.complete_upload(upload.id, 3.0))
        self.assertFalse(self.store.complete_upload(upload.id, 4.0))
        self.assertEqual(self.store.get_upload(upload.id).uploaded, 3.0)
