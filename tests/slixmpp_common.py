"""
What the slixmpp scenario scripts (tests/slixmpp_*.py, run as
subprocesses from the tests) share: the bound on every wait, and polling
for a condition within it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

#: seconds any one step of a scenario may take
TIMEOUT = 10.0


async def until(check: Callable[[], bool], limit: float = TIMEOUT,
                interval: float = 0.05) -> bool:
    """Poll C{check} until it is true (True) or C{limit} seconds pass (False)."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True
