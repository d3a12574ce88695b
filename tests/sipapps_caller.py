"""The caller test app as an importable module (a module per descriptor)."""

from tests.sipapps import caller as descriptor  # noqa: F401
