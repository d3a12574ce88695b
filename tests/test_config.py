"""Configuration: defaults, TOML, overrides and one-line errors."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from convergence.config import ConfigError, load_config


class ConfigTests(SynchronousTestCase):
    def write(self, text: str) -> str:
        path = Path(self.mktemp())
        path.write_text(text)
        return str(path)

    def test_embedded_defaults(self) -> None:
        """With nothing given the server serves localhost on 127.0.0.1."""
        c = load_config()
        self.assertEqual(c.domains, ("localhost",))
        self.assertEqual(c.interface, "127.0.0.1")
        self.assertEqual((c.listen.c2s_port, c.listen.c2s_tls_port, c.listen.s2s_port,
                          c.listen.sip_port, c.listen.http_port),
                         (5222, 5223, 5269, 5060, 8080))
        self.assertEqual((c.xmpp.caps_cache_size, c.xmpp.caps_query_timeout), (1000, 30.0))
        self.assertEqual(c.data_dir, Path("convergence-data"))
        self.assertEqual(c.database_path, Path("convergence-data/convergence.sqlite3"))
        self.assertTrue(c.xmpp.require_tls)
        self.assertEqual(c.xmpp.max_stanza_size, 262144)
        self.assertEqual([a.name for a in c.apps], ["echo", "chatline", "selfhelp"])
        self.assertEqual(c.sip.max_message_size, 65536)
        self.assertEqual((c.sip.t1, c.sip.t2, c.sip.t4), (0.5, 4.0, 5.0))

    def test_file_and_overrides(self) -> None:
        """Overrides beat the file, which beats the defaults."""
        path = self.write(
            'domains = ["example.org"]\n[listen]\nc2s_port = 15222\n'
            '[xmpp]\nmax_stanza_size = 65536\nrequire_tls = false\n'
        )
        c = load_config(path, {"c2s_port": 0, "domains": ["a.example", "B.Example"]})
        self.assertEqual(c.domains, ("a.example", "b.example"))
        self.assertEqual(c.listen.c2s_port, 0)
        self.assertEqual(c.xmpp.max_stanza_size, 65536)
        self.assertFalse(c.xmpp.require_tls)

    def test_direct_tls_port(self) -> None:
        """listen.c2s_tls_port from the file; --c2s-tls-port overrides it,
        0 disables it."""
        from convergence.plugin import Options

        path = self.write("[listen]\nc2s_tls_port = 15223\n")
        self.assertEqual(load_config(path).listen.c2s_tls_port, 15223)
        options = Options()
        options.parseOptions(["--c2s-tls-port", "0"])
        self.assertEqual(load_config(path, options.overrides()).listen.c2s_tls_port, 0)
        options = Options()
        options.parseOptions(["--c2s-tls-port", "x"])
        with self.assertRaises(ConfigError) as cm:
            options.overrides()
        self.assertIn("c2s_tls_port", str(cm.exception))

    def test_apps_table(self) -> None:
        """Apps can be disabled, moved to another module and re-addressed."""
        path = self.write(
            '[apps.echo]\nenabled = false\n'
            '[apps.bot]\nmodule = "apps.echo"\nxmpp = ["bot@{domain}"]\n'
            '[apps.bot.settings]\ngreeting = "hi"\n'
        )
        c = load_config(path)
        self.assertEqual([(a.name, a.module, a.xmpp) for a in c.apps],
                         [("chatline", "apps.chatline", None),
                          ("selfhelp", "apps.selfhelp", None),
                          ("bot", "apps.echo", ("bot@{domain}",))])
        self.assertEqual(c.apps[2].settings, {"greeting": "hi"})

    def assertConfigError(self, text: str, key: str, overrides=None) -> None:
        path = self.write(text)
        with self.assertRaises(ConfigError) as cm:
            load_config(path, overrides)
        message = str(cm.exception)
        self.assertIn(key, message)
        self.assertNotIn("\n", message)

    def test_errors_name_the_key(self) -> None:
        """Every bad value is a one-line error naming its key."""
        self.assertConfigError("[listen]\nc2s_port = 70000\n", "listen.c2s_port")
        self.assertConfigError("[listen]\nc2s_port = 'x'\n", "listen.c2s_port")
        self.assertConfigError("[xmpp]\nbogus = 1\n", "xmpp.bogus")
        self.assertConfigError("[xmpp]\nscram_iterations = 10\n", "xmpp.scram_iterations")
        self.assertConfigError("[xmpp]\nsasl_mechanisms = ['MD5']\n", "xmpp.sasl_mechanisms")
        self.assertConfigError("interface = 'nope'\n", "interface")
        self.assertConfigError("domains = ['a@b']\n", "domains[0]")
        self.assertConfigError("domains = []\n", "domains")
        self.assertConfigError("colour = 'red'\n", "colour")
        self.assertConfigError("[tls]\ncertificate = 'x.pem'\n", "tls.certificate")
        self.assertConfigError("", "c2s_port", {"c2s_port": -1})
        self.assertConfigError("[listen]\nc2s_tls_port = 65536\n", "listen.c2s_tls_port")
        self.assertConfigError("[xmpp]\ncaps_cache_size = 0\n", "xmpp.caps_cache_size")
        self.assertConfigError("[s2s]\nmax_connections_per_ip = 0\n",
                               "s2s.max_connections_per_ip")
        self.assertConfigError("[xmpp]\ncaps_query_timeout = 0\n", "xmpp.caps_query_timeout")
        self.assertConfigError("[sip]\nt1 = 0\n", "sip.t1")
        self.assertConfigError("[sip]\nt1 = 5.0\nt2 = 4.0\n", "sip.t2")
        self.assertConfigError("[sip]\nmin_expires = 600\ndefault_expires = 60\n",
                               "sip.default_expires")
        self.assertConfigError("[apps.chatline]\nsip = 'x'\n", "apps.chatline.sip")

    def test_invalid_toml(self) -> None:
        """A file that is not TOML is reported with its path."""
        path = self.write("domains = [\n")
        with self.assertRaises(ConfigError) as cm:
            load_config(path)
        self.assertIn(path, str(cm.exception))

    def test_missing_file(self) -> None:
        """A missing file is a clear error."""
        with self.assertRaises(ConfigError) as cm:
            load_config("/nonexistent/convergence.toml")
        self.assertIn("cannot read config file", str(cm.exception))


class UploadAndVCardConfigTests(SynchronousTestCase):
    def write(self, text: str) -> str:
        path = Path(self.mktemp())
        path.write_text(text)
        return str(path)

    def test_http_upload_section(self) -> None:
        c = load_config(self.write(
            '[http_upload]\nmax_file_size = 5000\nquota_per_user = 0\nexpire_after = 0\n'
            'slot_lifetime = 60\npublic_url = "https://files.example.com/xmpp/"\n'
            '[xmpp]\nvcard_max_size = 8192\n'))
        u = c.http_upload
        self.assertEqual((u.max_file_size, u.quota_per_user, u.expire_after, u.slot_lifetime),
                         (5000, 0, 0.0, 60.0))
        self.assertEqual(u.public_url, "https://files.example.com/xmpp")
        self.assertEqual(c.xmpp.vcard_max_size, 8192)
        self.assertEqual(load_config().http_upload.max_file_size, 10485760)
        self.assertEqual(load_config().xmpp.vcard_max_size, 65536)

    def test_websocket_keys(self) -> None:
        x = load_config().xmpp
        self.assertEqual((x.websocket, x.websocket_path, x.websocket_url,
                          x.websocket_secure), (True, "/xmpp-websocket", "", "loopback"))
        x = load_config(self.write(
            '[xmpp]\nwebsocket = false\nwebsocket_path = "/ws"\n'
            'websocket_url = "wss://chat.example.com/ws"\nwebsocket_secure = "always"\n')).xmpp
        self.assertEqual((x.websocket, x.websocket_path, x.websocket_url,
                          x.websocket_secure),
                         (False, "/ws", "wss://chat.example.com/ws", "always"))
        for text in ('websocket_path = "ws"', 'websocket_path = "/a/b"',
                     'websocket_path = "/"', 'websocket_path = "/.."',
                     'websocket_url = "https://x.example/ws"',
                     'websocket_url = "wss://x.example/ws?a=b"',
                     'websocket_secure = "sometimes"', 'websocket = "yes"'):
            with self.assertRaises(ConfigError) as caught:
                load_config(self.write(f"[xmpp]\n{text}\n"))
            key = "xmpp." + text.split(" ")[0]
            self.assertTrue(str(caught.exception).startswith(key), (text, caught.exception))

    def test_http_upload_errors_name_the_key(self) -> None:
        for text, key in [
                ('[http_upload]\nmax_file_size = 0\n', "http_upload.max_file_size"),
                ('[http_upload]\nmax_file_size = "big"\n', "http_upload.max_file_size"),
                ('[http_upload]\nslot_lifetime = 0\n', "http_upload.slot_lifetime"),
                ('[http_upload]\nexpire_after = -1\n', "http_upload.expire_after"),
                ('[http_upload]\npublic_url = "files.example.com"\n',
                 "http_upload.public_url"),
                ('[http_upload]\npublic_url = "https://x.example/?a=b"\n',
                 "http_upload.public_url"),
                ('[http_upload]\nquota_per_user = 10\n', "http_upload.quota_per_user"),
                ('[http_upload]\nsize = 10\n', "http_upload.size"),
                ('[xmpp]\nvcard_max_size = 10\n', "xmpp.vcard_max_size")]:
            with self.assertRaises(ConfigError) as caught:
                load_config(self.write(text))
            self.assertTrue(str(caught.exception).startswith(key), (text, caught.exception))
