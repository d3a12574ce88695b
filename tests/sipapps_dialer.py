"""The dialer test app as an importable module (a module per descriptor)."""

from tests.sipapps import dialer as descriptor  # noqa: F401
