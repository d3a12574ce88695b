"""The outcome test app as an importable module (a module per descriptor)."""

from tests.sipapps import outcome as descriptor  # noqa: F401
