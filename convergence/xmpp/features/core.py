"""RFC 6120 core: declared so the compliance table lists it."""

from convergence.xmpp.features import Feature

FEATURE = Feature(name="core", spec="RFC 6120", version="")
