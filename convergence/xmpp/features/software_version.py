# -*- test-case-name: tests.test_software_version -*-
"""
XEP-0092: Software Version of the server: its name, the installed
package's version and, only if C{xmpp.version_show_os} is set, the
operating system.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from lxml import etree

from convergence import __version__
from convergence.xmpp.features import Feature
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

VERSION = "jabber:iq:version"
NAME = "convergence"


def package_version() -> str:
    """The installed distribution's version (the source tree's otherwise)."""
    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError:
        return __version__


def operating_system() -> str:
    """The kernel's name and release, e.g. C{Linux 6.1.0}."""
    return " ".join(p for p in (platform.system(), platform.release()) if p)


def install(server: Any) -> None:
    version = package_version()
    os_name = operating_system() if server.config.version_show_os else None

    def on_version(event: StanzaEvent) -> bool:
        result = iq_result(event.stanza)
        query = etree.SubElement(result, f"{{{VERSION}}}query", nsmap={None: VERSION})
        etree.SubElement(query, f"{{{VERSION}}}name").text = NAME
        etree.SubElement(query, f"{{{VERSION}}}version").text = version
        if os_name:
            etree.SubElement(query, f"{{{VERSION}}}os").text = os_name
        event.reply(result)
        return True

    server.router.hook_iq("get", "host", VERSION, "query", on_version)


FEATURE = Feature(
    name="version", spec="XEP-0092", version="1.1",
    disco_features=(VERSION,), install=install,
)
