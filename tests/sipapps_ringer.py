"""The ringer test app as an importable module (a module per descriptor)."""

from tests.sipapps import ringer as descriptor  # noqa: F401
