# -*- test-case-name: tests.test_dispatch -*-
"""
Calling application code: plain values, Deferreds and coroutines alike.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred


def invoke(handler: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
    """
    Call C{handler} and return a Deferred for its outcome.

    A handler may return a value, a Deferred or be C{async def}; an exception
    raised synchronously becomes a failed Deferred.
    """

    def call() -> Any:
        result = handler(*args, **kwargs)
        if inspect.isawaitable(result) and not isinstance(result, Deferred):
            return ensureDeferred(result)
        return result

    return maybeDeferred(call)


def application_key(app: Any, protocol: str, request: Any) -> Any:
    """
    The application key of an initial request, from the app's descriptor,
    or C{None} (the app declares none, or the request has none).
    """
    derive = app.descriptor.application_keys.get(protocol)
    return derive(request) if derive is not None else None
