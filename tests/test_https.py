"""HTTPS on the HTTP site (listen.https_port): configuration and assembly.
The real-socket upload over HTTPS is in tests/test_slixmpp_vcard_upload.py."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from convergence.config import ConfigError, load_config
from convergence.service import build


class HttpsTests(SynchronousTestCase):
    def config(self, text: str = "", **overrides):
        work = Path(self.mktemp())
        work.mkdir(parents=True)
        path = work / "convergence.toml"
        path.write_text(f"data_dir = '{work / 'data'}'\n" + text)
        return load_config(path, overrides)

    def built(self, config):
        server = build(config, Clock())
        self.addCleanup(server.store.close)
        return server

    def test_off_by_default(self) -> None:
        config = self.config()
        self.assertEqual(config.listen.https_port, 0)
        server = self.built(config)
        self.assertIsNone(server.https)
        self.assertTrue(server.uploads.public_base.startswith("http://127.0.0.1:8080"))

    def test_port_is_validated(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            self.config("[listen]\nhttps_port = 70000\n")
        self.assertIn("listen.https_port", str(caught.exception))

    def test_on_uses_https_urls_on_the_first_domain(self) -> None:
        server = self.built(self.config("domains = ['example.org']\n"
                                        "[listen]\nhttps_port = 5443\n"))
        self.assertIsNotNone(server.https.tls_context)
        self.assertIsNone(server.http.tls_context)
        self.assertIs(server.https.root, server.http.root)
        self.assertIs(server.https.body_routes, server.http.body_routes)
        self.assertIn(b"upload", server.https.body_routes)
        self.assertEqual(server.uploads.public_base, "https://example.org:5443")
        self.assertEqual(server.container.factories["http"].base_url,
                         "https://example.org:5443")
        self.assertEqual(server.https.tls_context.minimum_version.name, "TLSv1_2")

    def test_https_alone_still_offers_uploads(self) -> None:
        server = self.built(self.config("[listen]\nhttp_port = 0\nhttps_port = 5443\n"))
        self.assertIsNotNone(server.uploads)
        self.assertEqual(server.uploads.public_base, "https://localhost:5443")

    def test_public_url_wins(self) -> None:
        server = self.built(self.config(
            "[listen]\nhttps_port = 5443\n"
            "[http_upload]\npublic_url = 'https://files.example.org/x'\n"))
        self.assertEqual(server.uploads.public_base, "https://files.example.org/x")

    def test_bad_certificate_is_a_clear_error(self) -> None:
        work = Path(self.mktemp())
        work.mkdir(parents=True)
        bad = work / "cert.pem"
        bad.write_text("not a certificate\n")
        config = self.config(f"[listen]\nhttps_port = 5443\n[tls]\ncertificate = '{bad}'\n"
                             f"private_key = '{bad}'\n")
        with self.assertRaises(ConfigError) as caught:
            build(config, Clock())
        message = str(caught.exception)
        self.assertIn("tls.certificate", message)
        self.assertIn("HTTPS", message)
        self.assertNotIn("\n", message)
