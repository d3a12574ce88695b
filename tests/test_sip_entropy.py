"""Tests for L{convergence.sip.entropy}: pooled random bytes."""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from convergence.sip import entropy


class EntropyTests(SynchronousTestCase):
    def test_lengths_and_hex(self) -> None:
        self.assertEqual(len(entropy.random_bytes(12)), 12)
        tag = entropy.random_hex(6)
        self.assertEqual(len(tag), 12)
        int(tag, 16)

    def test_no_repeats(self) -> None:
        """Across several refills of the pool no value comes twice."""
        seen = {entropy.random_hex(8) for _ in range(3 * entropy.POOL_SIZE // 8)}
        self.assertEqual(len(seen), 3 * entropy.POOL_SIZE // 8)

    def test_below(self) -> None:
        values = [entropy.random_below(7) for _ in range(2000)]
        self.assertEqual(set(values), set(range(7)))
        self.assertTrue(all(0 <= entropy.random_below(2 ** 31 - 1) < 2 ** 31 - 1
                            for _ in range(100)))

    def test_fork_gets_its_own_bytes(self) -> None:
        """A forked child never hands out the bytes its parent will."""
        entropy.random_bytes(1)  # the pool is full
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.write(write, entropy.random_bytes(16))
            finally:
                os._exit(0)
        os.close(write)
        child = os.read(read, 16)
        os.close(read)
        os.waitpid(pid, 0)
        self.assertNotEqual(child, entropy.random_bytes(16))
