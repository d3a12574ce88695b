"""
C{[metrics]}: where the endpoint may be placed, and the clear error for
every placement the policy refuses (docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from convergence.config import ConfigError, load_config
from convergence.metrics.setup import token_of

TOKEN = "0123456789abcdef-token"


class MetricsConfigTests(SynchronousTestCase):
    def load(self, text: str) -> object:
        path = Path(self.mktemp())
        path.write_text(text)
        return load_config(path)

    def refused(self, text: str, *needles: str) -> str:
        with self.assertRaises(ConfigError) as e:
            self.load(text)
        for needle in needles:
            self.assertIn(needle, str(e.exception))
        return str(e.exception)

    def test_defaults(self) -> None:
        """Off by default; when on, a loopback listener of its own."""
        config = load_config().metrics
        self.assertFalse(config.enabled)
        self.assertEqual(config.address, ("127.0.0.1", 9090))
        config = self.load("[metrics]\nenabled = true\n").metrics
        self.assertFalse(config.on_http)
        self.assertEqual(config.path, "/metrics")

    def test_http_listener_needs_a_token(self) -> None:
        """On the public HTTP listener, scrapes must carry a token."""
        self.refused('[metrics]\nenabled = true\nlisten = "http"\n',
                     "metrics.token", "required")
        config = self.load(f'[metrics]\nenabled = true\nlisten = "http"\ntoken = "{TOKEN}"\n')
        self.assertTrue(config.metrics.on_http)
        self.refused(f'[listen]\nhttp_port = 0\n[metrics]\nenabled = true\nlisten = "http"\n'
                     f'token = "{TOKEN}"\n', "metrics.listen", "https_port are 0")
        self.load(f'[listen]\nhttp_port = 0\nhttps_port = 8443\n[metrics]\nenabled = true\n'
                  f'listen = "http"\ntoken = "{TOKEN}"\n')

    def test_public_address_needs_a_token(self) -> None:
        """A non-loopback listener without a token is refused, unless the
        operator says so."""
        self.refused('[metrics]\nenabled = true\nlisten = "0.0.0.0:9090"\n',
                     "metrics.listen", "not a loopback address")
        self.load(f'[metrics]\nenabled = true\nlisten = "0.0.0.0:9090"\ntoken = "{TOKEN}"\n')
        self.load('[metrics]\nenabled = true\nlisten = "0.0.0.0:9090"\n'
                  "allow_unauthenticated = true\n")
        self.load('[metrics]\nenabled = true\nlisten = "[::1]:9090"\n')

    def test_bad_values(self) -> None:
        for text, needle in (
            ('listen = "localhost:9090"', "metrics.listen"),
            ('listen = "127.0.0.1"', "metrics.listen"),
            ('listen = "127.0.0.1:0"', "metrics.listen"),
            ('listen = "::1:9090"', "metrics.listen"),
            ('path = "metrics"', "metrics.path"),
            ('path = "/a/b"', "metrics.path"),
            ('token = "short"', "metrics.token"),
            ('token = "has a space in the middle"', "metrics.token"),
            ("reactor_lag_interval = 0", "metrics.reactor_lag_interval"),
            ("colour = 1", "metrics.colour: unknown key"),
        ):
            self.refused(f"[metrics]\nenabled = true\n{text}\n", needle)

    def test_port_taken_by_another_listener(self) -> None:
        self.refused('[metrics]\nenabled = true\nlisten = "127.0.0.1:8080"\n',
                     "metrics.listen", "listen.http_port")

    def test_token_file(self) -> None:
        """The token may live in a file (first line); not both ways at once."""
        token_file = Path(self.mktemp())
        token_file.write_text(TOKEN + "\n")
        config = self.load(f'[metrics]\nenabled = true\nlisten = "http"\n'
                           f'token_file = "{token_file}"\n')
        self.assertEqual(token_of(config.metrics), TOKEN)
        self.refused(f'[metrics]\nenabled = true\ntoken = "{TOKEN}"\n'
                     f'token_file = "{token_file}"\n', "not both")
        missing = self.load('[metrics]\nenabled = true\ntoken_file = "/nonexistent/t"\n')
        with self.assertRaises(ConfigError) as e:
            token_of(missing.metrics)
        self.assertIn("metrics.token_file: cannot read", str(e.exception))
