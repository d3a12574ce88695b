"""
Built-in XMPP features: one module each, declaring what it implements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Feature:
    """
    What a feature module implements, declared by the module itself.

    Disco#info answers and the compliance table are generated from these
    declarations, never from a hand-kept list.
    """

    name: str
    spec: str
    version: str
    disco_features: tuple[str, ...] = ()
    install: Callable[[Any], None] = field(default=lambda server: None)
    #: disco#info features of every account's bare JID (PEP, MAM …)
    account_features: tuple[str, ...] = ()
    #: disco#info identities (category, type) of every account's bare JID
    #: besides account/registered (PEP's pubsub/pep)
    account_identities: tuple[tuple[str, str], ...] = ()
    #: "complete" or "partial" (then C{note} says what is missing)
    status: str = "complete"
    note: str = ""


class FeatureRegistry:
    """The features a server runs."""

    def __init__(self, features: Iterable[Feature] = ()) -> None:
        self.features: list[Feature] = list(features)

    def disco_features(self) -> list[str]:
        """Every disco feature var, sorted, without duplicates."""
        return sorted({var for f in self.features for var in f.disco_features})

    def account_features(self) -> list[str]:
        """Every disco feature var of an account's bare JID, sorted."""
        return sorted({var for f in self.features for var in f.account_features})

    def account_identities(self) -> list[tuple[str, str]]:
        """Every extra identity of an account's bare JID, sorted."""
        return sorted({i for f in self.features for i in f.account_identities})

    def install(self, server: Any) -> None:
        """Let each feature subscribe its handlers."""
        for feature in self.features:
            feature.install(server)


def builtin_features() -> list[Feature]:
    """The features every server runs."""
    from convergence.xmpp import mam, muc
    from convergence.xmpp.features import (
        caps,
        contact_addresses,
        core,
        csi,
        disco,
        entity_time,
        http_upload,
        last_activity,
        ping,
        push,
        registration,
        sm,
        software_version,
        vcard,
    )
    from convergence.xmpp.im import blocking, carbons, offline, presence, roster
    from convergence.xmpp.pep import avatar, bookmarks, private, vcard_avatar
    from convergence.xmpp.pep import feature as pep

    return [core.FEATURE, disco.FEATURE, ping.FEATURE, caps.FEATURE,
            software_version.FEATURE, entity_time.FEATURE, contact_addresses.FEATURE,
            last_activity.FEATURE, registration.FEATURE,
            roster.FEATURE, presence.FEATURE, offline.FEATURE, push.FEATURE,
            vcard.FEATURE, http_upload.FEATURE,
            pep.FEATURE, pep.PUBSUB_FEATURE, pep.PRIVATE_PUBSUB_FEATURE,
            private.FEATURE, bookmarks.FEATURE, bookmarks.LEGACY_FEATURE, avatar.FEATURE,
            vcard_avatar.FEATURE, vcard_avatar.VCARD_AVATARS,
            carbons.FEATURE, blocking.FEATURE, csi.FEATURE, sm.FEATURE,
            muc.FEATURE, muc.SELF_PING_FEATURE, muc.DIRECT_INVITES_FEATURE,
            *mam.FEATURES, muc.ARCHIVE_FEATURE, muc.STANZA_IDS_FEATURE]
