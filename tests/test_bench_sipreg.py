"""bench/sipreg.py: its digest answers verify against convergence's own
challenger, and the bench's Kamailio config is what Kamailio accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import sipreg
from bench.servers import kamailio_config
from convergence.auth.digest import DigestChallenger, digest_ha1


class DigestTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.challenger = DigestChallenger("localhost", lambda: 1000.0,
                                           algorithms=("MD5", "SHA-256"))

    def verify(self, algorithm: str, password: str) -> bool:
        challenge = sipreg.pick_challenge(self.challenger.challenges(), algorithm)
        assert challenge is not None
        value = sipreg.authorization(challenge, algorithm, "user7", password,
                                     "sip:localhost", 1)
        ha1 = {a: digest_ha1(a, "user7", "localhost", "secret") for a in ("MD5", "SHA-256")}
        result = self.challenger.verify("REGISTER", value,
                                        lambda user, algo: ha1[algo] if user == "user7" else None,
                                        request_uri="sip:localhost")
        return result.ok

    def test_md5_and_sha256_verify(self) -> None:
        for algorithm in ("MD5", "SHA-256"):
            self.assertTrue(self.verify(algorithm, "secret"), algorithm)
            self.assertFalse(self.verify(algorithm, "wrong"), algorithm)

    def test_pick_challenge(self) -> None:
        values = ['Digest realm="x", nonce="n", qop="auth"',
                  'Digest realm="x", nonce="n", algorithm=SHA-256, qop="auth"']
        self.assertEqual(sipreg.pick_challenge(values, "MD5"), values[0])
        self.assertEqual(sipreg.pick_challenge(values, "SHA-256"), values[1])
        self.assertIsNone(sipreg.pick_challenge(values[:1], "SHA-256"))


class KamailioConfigTests(SynchronousTestCase):
    def test_config_parses(self) -> None:
        """kamailio -c checks the bench's config (both algorithms), when
        Kamailio is installed (`make bench-deps`); its text otherwise."""
        for algorithm in ("MD5", "SHA-256"):
            text = kamailio_config(5999, algorithm, 1)
            self.assertIn('modparam("usrloc", "db_mode", 0)', text)
            self.assertIn(f'modparam("auth", "algorithm", "{"" if algorithm == "MD5" else algorithm}")',
                          text)
            if shutil.which("kamailio") is None:
                continue
            path = Path(self.mktemp())
            path.write_text(text)
            done = subprocess.run(["kamailio", "-c", "-f", str(path)], capture_output=True,
                                  text=True, timeout=30, check=False)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
