# -*- test-case-name: tests.test_store_sqlite -*-
"""Persistence interfaces; each backend implements them (see C{sqlite})."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from zope.interface import Interface

if TYPE_CHECKING:
    from convergence.auth.scram import ScramCredential

__all__ = [
    "DEFAULT_Q", "Binding", "IAccountStore", "ILastActivityStore", "ILocationStore",
    "IMucStore", "IOfflineStore", "IPepStore", "IPrivateStore", "IPushStore",
    "IRosterStore", "IUploadStore", "IVCardStore", "OfflineMessage", "PushRegistration",
    "RosterItem", "StoredRoom", "Upload",
    "DEFAULT_Q", "ArchivePage", "ArchivePrefs", "ArchiveQuery", "ArchivedMessage",
    "Binding", "IAccountStore", "IArchiveStore", "ILastActivityStore", "ILocationStore",
    "IOfflineStore", "IPepStore", "IPrivateStore", "IPushStore", "IRosterStore",
    "IUploadStore", "IVCardStore", "OfflineMessage", "PushRegistration", "RosterItem",
    "Upload",
]


class IAccountStore(Interface):
    """
    Accounts and their credentials, keyed by prepared localpart and domain.
    A store never holds a password.

    SCRAM credentials are keyed by SASL mechanism name (C{"SCRAM-SHA-1"},
    C{"SCRAM-SHA-256"}).  HTTP Digest credentials for SIP are the hex HA1
    C{H(localpart ":" domain ":" password)} (the realm is the domain), keyed
    by RFC 8760 algorithm name (C{"MD5"}, C{"SHA-256"}).
    """

    def create(
        localpart: str,
        domain: str,
        credentials: Mapping[str, ScramCredential],
        digests: Mapping[str, str] | None = None,
    ) -> None:
        """
        Register a new account with its SCRAM credentials and, in the same
        transaction, its digest HA1s by algorithm.

        @raise convergence.store.errors.AccountExists: it is already there.
        @raise ValueError: a credential or HA1 does not fit its name.
        """

    def set_credentials(
        localpart: str,
        domain: str,
        credentials: Mapping[str, ScramCredential],
        digests: Mapping[str, str] | None = None,
    ) -> None:
        """
        Replace all credentials of an account, SCRAM and digest, in one
        transaction.  Without C{digests} the account is left with none, so
        no HA1 of an old password survives a password change.

        @raise convergence.store.errors.NoSuchAccount: there is no such account.
        @raise ValueError: a credential or HA1 does not fit its name.
        """

    def set_digest(
        localpart: str, domain: str, ha1_by_algorithm: Mapping[str, str]
    ) -> None:
        """
        Replace all digest HA1s of an account (hex, by C{"MD5"}/C{"SHA-256"}).

        @raise convergence.store.errors.NoSuchAccount: there is no such account.
        @raise ValueError: an unknown algorithm or an HA1 of the wrong size.
        """

    def get_digest(localpart: str, domain: str, algorithm: str) -> str | None:
        """The lowercase hex HA1 for C{algorithm}, or C{None} if none is stored."""

    def delete(localpart: str, domain: str) -> None:
        """
        Remove an account and everything stored for it.

        @raise convergence.store.errors.NoSuchAccount: there is no such account.
        """

    def get_credentials(
        localpart: str, domain: str
    ) -> dict[str, ScramCredential] | None:
        """Return the credentials by mechanism name, or C{None} if no account."""

    def exists(localpart: str, domain: str) -> bool:
        """Whether the account exists."""

    def list_accounts(domain: str | None = None) -> list[str]:
        """Return the sorted bare JIDs (C{user@domain}), optionally of one domain."""

    def close() -> None:
        """Release the backend's resources; the store is unusable afterwards."""


#: The q-value that orders a binding registered without one (RFC 3261
#: leaves it open; a plain registration is treated as fully preferred).
DEFAULT_Q = 1.0


@dataclass(frozen=True, slots=True)
class Binding:
    """
    One registrar binding (RFC 3261 section 10.3) of an address-of-record.

    @ivar aor: the canonical address-of-record URI (C{sip:alice@example.com}).
    @ivar contact: the Contact URI as registered, the binding's key within
        its AOR (the registrar compares URIs before it stores them).
    @ivar expires_at: absolute expiry time, same clock as the store's C{now}.
    @ivar call_id: the Call-ID of the REGISTER that last refreshed it.
    @ivar cseq: that REGISTER's CSeq number.
    @ivar q: the Contact's q-value (0 to 1), or C{None} if it had none.
    @ivar path: the Path header URIs to route through (RFC 3327), in order.
    @ivar instance_id: the C{+sip.instance} value (RFC 5626), if any.
    @ivar reg_id: the C{reg-id} value (RFC 5626), if any.
    @ivar received: the transport address the REGISTER came from (for
        example C{"udp:192.0.2.4:5060"}), opaque to the store.
    """

    aor: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    q: float | None = None
    path: tuple[str, ...] = ()
    instance_id: str | None = None
    reg_id: int | None = None
    received: str | None = None

    @property
    def priority(self) -> float:
        """The q-value used for ordering: C{q}, or L{DEFAULT_Q}."""
        return DEFAULT_Q if self.q is None else self.q


class ILocationStore(Interface):
    """
    The SIP location service: bindings of addresses-of-record to contacts,
    keyed by C{(aor, contact)} with exact string comparison.  Times are
    absolute seconds from the caller's clock; an expired binding is as good
    as absent even before L{purge_expired} removes it.
    """

    def register_binding(
        aor: str,
        contact: str,
        expires_at: float,
        call_id: str,
        cseq: int,
        q: float | None = None,
        path: Sequence[str] = (),
        instance_id: str | None = None,
        reg_id: int | None = None,
        received: str | None = None,
    ) -> None:
        """
        Add the binding, or replace every field of an existing one with the
        same C{(aor, contact)} (a refresh).  The Call-ID/CSeq ordering rules
        of RFC 3261 section 10.3 are the registrar's to apply.

        @raise ValueError: C{q} is outside 0..1 or C{cseq} is negative.
        """

    def remove_binding(aor: str, contact: str) -> bool:
        """Remove one binding; return whether it existed."""

    def remove_all(aor: str) -> int:
        """Remove every binding of C{aor} (C{Contact: *}); return how many."""

    def remove_received(received: str) -> int:
        """
        Remove every binding whose C{received} is C{received} (the flow it
        was registered through closed); return how many.
        """

    def remove_received_prefix(prefix: str) -> int:
        """Remove every binding whose C{received} starts with C{prefix};
        return how many."""

    def bindings(aor: str, now: float) -> list[Binding]:
        """
        The bindings of C{aor} expiring after C{now}, highest q first
        (L{Binding.priority}), then by contact.
        """

    def purge_expired(now: float) -> int:
        """Delete every binding expiring at or before C{now}; return how many."""

    def close() -> None:
        """Release the backend's resources; the store is unusable afterwards."""


@dataclass(frozen=True, slots=True)
class RosterItem:
    """
    One contact of a user's roster with its subscription state (RFC 6121
    section 2.1.2 and Appendix A).

    @ivar contact: the contact's bare JID, prepared.
    @ivar subscription: C{none}, C{to}, C{from} or C{both}.
    @ivar ask: a subscription request of the user is pending (Pending Out).
    @ivar pending_in: the contact's request awaits the user's answer.
    @ivar approved: the user pre-approved the contact's request (3.4).
    @ivar listed: the item is in the roster the user sees; an unlisted
        item only holds a pending request or a pre-approval (3.1.3).
    @ivar request: the contact's pending C{subscribe} stanza, serialized,
        redelivered at the user's next login.
    """

    contact: str
    name: str | None = None
    subscription: str = "none"
    ask: bool = False
    pending_in: bool = False
    approved: bool = False
    groups: tuple[str, ...] = ()
    listed: bool = True
    request: str | None = None


class IRosterStore(Interface):
    """
    Rosters, keyed by the user's prepared localpart and domain.  Every
    change raises the roster's version (an integer, 0 for a new roster).
    """

    def roster(localpart: str, domain: str) -> tuple[int, list[RosterItem]]:
        """The roster's version and every item, listed or not."""

    def put_item(localpart: str, domain: str, item: RosterItem) -> int:
        """Add or replace the item for C{item.contact}; return the new version."""

    def remove_item(localpart: str, domain: str, contact: str) -> int:
        """Remove the item (if any); return the new version."""

    def subscribers(contact: str) -> list[tuple[str, str]]:
        """(localpart, domain) of every user subscribed to C{contact}'s
        presence (subscription C{to} or C{both}), sorted."""

    def cancel_subscriptions_of(contact: str) -> list[tuple[str, str]]:
        """
        The account C{contact} (a bare JID) is gone: every local roster
        item of it loses its subscription, request and pre-approval (as
        the unsubscribe and unsubscribed of XEP-0077 3.2 would do), each
        changed roster's version goes up; return the rosters' owners.
        """


@dataclass(frozen=True)
class OfflineMessage:
    """A stored message: its store id (ordering), receive time, the stanza."""

    id: int
    stamp: float
    stanza: bytes


class IOfflineStore(Interface):
    """Messages kept for users while none of their resources is available."""

    def store_message(localpart: str, domain: str, stamp: float, stanza: bytes,
                      quota: int) -> bool:
        """
        Store and commit one message unless the user already has C{quota}
        (0: no limit); return whether it was stored.
        """

    def store_messages(items: Sequence[tuple[str, str, float, bytes]],
                       quota: int) -> list[bool]:
        """
        Store C{(localpart, domain, stamp, stanza)} items in order and
        commit them together, each one unless its user already has
        C{quota} (0: no limit) counting the items before it; return, per
        item, whether it was stored.
        """

    def messages(localpart: str, domain: str, limit: int) -> list[OfflineMessage]:
        """Up to C{limit} stored messages of the user, oldest first."""

    def remove_messages(localpart: str, domain: str, ids: Sequence[int]) -> None:
        """Delete the messages with these ids (delivered)."""

    def remove_messages_through(localpart: str, domain: str, last: int) -> None:
        """Delete the user's messages up to and including the id C{last}
        (ids grow: a message stored later has a larger one)."""

    def count_messages(localpart: str, domain: str) -> int:
        """How many messages are stored for the user."""

    def count_all_messages() -> int:
        """How many messages are stored, for every user (the metrics)."""


@dataclass(frozen=True)
class PushRegistration:
    """
    One XEP-0357 push registration of an account: the app server's JID and
    node the client enabled, identified within the account by both.

    @ivar service: the app server's JID, prepared.
    @ivar node: the PubSub node on it (the client's opaque token).
    @ivar options: the C{publish-options} data form of the enable,
        serialized, or C{None}.
    @ivar created: when it was (last) enabled, seconds since the epoch.
    """

    service: str
    node: str
    options: bytes | None = None
    created: float = 0.0


class IPushStore(Interface):
    """XEP-0357 push registrations, keyed by the account's prepared
    localpart and domain and by C{(service, node)} within it."""

    def put_registration(localpart: str, domain: str, registration: PushRegistration,
                         limit: int) -> bool:
        """
        Add the registration, or replace the one with the same service and
        node, in one transaction.  A new one is refused when the account
        already has C{limit} (0: no limit).

        @return: whether it was stored.
        """

    def remove_registrations(localpart: str, domain: str, service: str,
                             node: str | None = None) -> int:
        """Remove the registration with C{service} and C{node}, or every
        one with C{service} when C{node} is C{None}; return how many."""

    def registrations(localpart: str, domain: str) -> list[PushRegistration]:
        """Every registration of the account, oldest first."""


class IVCardStore(Interface):
    """Each account's vCard (XEP-0054), one serialized C{<vCard/>} each."""

    def get_vcard(localpart: str, domain: str) -> bytes | None:
        """The stored vCard, or C{None} if the user has none."""

    def set_vcard(localpart: str, domain: str, vcard: bytes, stamp: float) -> None:
        """Store and commit the user's vCard, replacing the old one."""


@dataclass(frozen=True)
class Upload:
    """
    One HTTP upload slot (XEP-0363) and, once uploaded, its file.

    @ivar id: the slot's random identifier (also the stored file's name).
    @ivar slot_expires: until when the PUT URL is valid.
    @ivar uploaded: when the file was uploaded, C{None} while it is not.
    """

    id: str
    localpart: str
    domain: str
    filename: str
    size: int
    content_type: str
    created: float
    slot_expires: float
    uploaded: float | None = None


class IUploadStore(Interface):
    """
    Upload slots and the files uploaded into them, keyed by slot id.  A
    user's usage is the size of their files plus that of their slots whose
    PUT URL is still valid.
    """

    def add_slot(upload: Upload, quota: int, now: float) -> bool:
        """
        Store the slot unless it would bring the owner's usage above
        C{quota} bytes (0: no limit); return whether it was stored.
        """

    def usage(localpart: str, domain: str, now: float) -> tuple[int, float | None]:
        """The owner's usage in bytes and the upload time of their oldest file."""

    def get_upload(upload_id: str) -> Upload | None:
        """The slot or file with this id, or C{None}."""

    def complete_upload(upload_id: str, stamp: float) -> bool:
        """Mark a slot's file uploaded; C{False} if there is no such pending slot."""

    def expired_uploads(uploaded_before: float | None, now: float) -> list[str]:
        """
        Ids of the files uploaded before C{uploaded_before} (C{None}: none
        expire) and of the slots never used whose PUT URL expired before C{now}.
        """

    def upload_ids() -> set[str]:
        """Every slot id the store knows."""

    def remove_uploads(ids: Sequence[str]) -> None:
        """Forget these slots and files."""


class ILastActivityStore(Interface):
    """
    When each user last logged out, with the status of that unavailable
    presence (XEP-0012), kept across restarts.  Removing an account removes
    its row (L{IAccountStore.delete}).
    """

    def set_last_logout(localpart: str, domain: str, stamp: float,
                        status: str | None) -> None:
        """Record a logout at C{stamp} (seconds since the epoch)."""

    def last_logout(localpart: str, domain: str) -> tuple[float, str | None] | None:
        """C{(stamp, status)} of the last logout, or C{None} if none is known."""


class IPepStore(Interface):
    """
    Personal eventing (XEP-0163) nodes of accounts: each node's
    configuration (a JSON-able mapping, opaque to the store) and its
    items in publication order, keyed by the owner's prepared localpart
    and domain and the node name.
    """

    def pep_nodes(localpart: str, domain: str) -> list[tuple[str, dict]]:
        """Every node of the account with its configuration, by name."""

    def create_pep_node(localpart: str, domain: str, node: str, config: Mapping,
                        max_nodes: int) -> bool:
        """
        Create a node unless the account already has C{max_nodes} (0: no
        limit); return whether it was created.

        @raise ValueError: the node exists.
        """

    def configure_pep_node(localpart: str, domain: str, node: str,
                           config: Mapping, max_items: int) -> None:
        """Replace a node's configuration, keeping its newest C{max_items}."""

    def delete_pep_node(localpart: str, domain: str, node: str) -> None:
        """Remove a node with its items."""

    def put_pep_item(localpart: str, domain: str, node: str, item_id: str,
                     payload: bytes, max_items: int) -> None:
        """
        Store an item as the node's newest (replacing one with the same
        id), then keep only the newest C{max_items}.
        """

    def pep_items(localpart: str, domain: str, node: str, limit: int | None = None,
                  ids: Sequence[str] | None = None) -> list[tuple[str, bytes]]:
        """
        C{(item id, payload)} of a node, oldest first: the newest C{limit}
        (C{None}: all), or only those with one of C{ids}.
        """

    def retract_pep_item(localpart: str, domain: str, node: str, item_id: str) -> bool:
        """Delete one item; return whether it existed."""

    def purge_pep_node(localpart: str, domain: str, node: str) -> None:
        """Delete every item of a node, keeping the node."""

    def remove_subscriber(jid: str) -> int:
        """Remove every subscription of the bare JID C{jid} and of its full
        JIDs, to anyone's nodes (its account is gone); return how many."""

    def pep_subscriptions(localpart: str, domain: str) -> list[tuple[str, str]]:
        """C{(node, subscribed JID)} of every explicit subscription to the
        account's nodes (deleting a node deletes its subscriptions)."""

    def subscribe_pep(localpart: str, domain: str, node: str, jid: str,
                      max_subscriptions: int) -> bool:
        """
        Subscribe C{jid} to a node (already subscribed: nothing changes)
        unless the node has C{max_subscriptions} (0: no limit); return
        whether C{jid} is subscribed now.
        """

    def unsubscribe_pep(localpart: str, domain: str, node: str, jid: str) -> bool:
        """Remove a subscription; return whether there was one."""


class IPrivateStore(Interface):
    """Private XML storage (XEP-0049): one element per account, namespace
    and element name, serialized."""

    def private_data(localpart: str, domain: str, namespace: str,
                     name: str) -> bytes | None:
        """The stored element, or C{None}."""

    def set_private_data(localpart: str, domain: str,
                         entries: Sequence[tuple[str, str, bytes | None]],
                         max_elements: int) -> bool:
        """
        Store (data C{None}: remove) elements given as C{(namespace, name,
        data)}, in one transaction: all of them, or none when the account
        would then hold more than C{max_elements} (0: no limit).  Return
        whether they were stored.
        """
class IBlockingStore(Interface):
    """
    Blocklists (XEP-0191), keyed by the user's prepared localpart and
    domain; each item is a prepared JID string (domain, bare or full).
    """

    def blocklist(localpart: str, domain: str) -> list[str]:
        """Every blocked JID of the user, sorted."""

    def block(localpart: str, domain: str, jids: Sequence[str], limit: int) -> bool:
        """
        Add C{jids} in one transaction, unless the blocklist would then
        hold more than C{limit} items; return whether they were added.
        """

    def unblock(localpart: str, domain: str, jids: Sequence[str] | None) -> None:
        """Remove C{jids} (C{None}: every item) in one transaction."""


class IHeldStanzaStore(Interface):
    """
    Messages held for a hibernating stream management session (XEP-0198):
    kept in memory for a resumption and here for a crash.  They become
    offline messages when the session ends without resuming, or when the
    server starts again after it died with sessions hibernating.
    """

    def hold(session: str, localpart: str, domain: str,
             stanzas: Sequence[tuple[float, bytes]]) -> None:
        """Commit C{(stamp, stanza)} pairs for C{session}, in order."""

    def release(session: str) -> None:
        """Forget what C{session} held (it resumed)."""

    def release_to_offline(session: str, quota: int) -> list[bytes]:
        """
        Move what C{session} held into offline storage, in order, within
        the user's C{quota} (0: no limit); return the stanzas that did not fit.
        """

    def recover() -> int:
        """Move everything held into offline storage (at startup: those
        sessions are gone), regardless of quota; return how many."""
@dataclass(frozen=True)
class StoredRoom:
    """
    A persistent XEP-0045 room as stored: its name (the localpart of its
    JID on the service), its configuration as JSON text, its subject and
    who set it, its affiliations (bare JID -> owner, admin, member or
    outcast) and the nicknames reserved by affiliated users (bare JID ->
    nickname).
    """

    name: str
    config: str
    subject: str = ""
    subject_from: str = ""
    affiliations: Mapping[str, str] = None  # type: ignore[assignment]
    created: float = 0.0
    nicks: Mapping[str, str] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.affiliations is None:
            object.__setattr__(self, "affiliations", {})
        if self.nicks is None:
            object.__setattr__(self, "nicks", {})


class IMucStore(Interface):
    """
    Persistent multi-user chat rooms, keyed by service domain
    (C{conference.example.org}) and room name.  Temporary rooms are never
    stored.
    """

    def rooms(service: str) -> list[StoredRoom]:
        """Every stored room of C{service}, by name."""

    def put_room(service: str, room: StoredRoom) -> None:
        """Store C{room} (configuration, subject and every affiliation),
        replacing what was stored under its name, in one transaction."""

    def delete_room(service: str, name: str) -> bool:
        """Forget a room and its affiliations; whether it was stored."""


@dataclass(frozen=True)
class ArchivedMessage:
    """
    One message of a user's archive (XEP-0313).

    @ivar id: the archive id: opaque, unguessable, unique in the archive.
    @ivar stamp: when the server archived it (seconds, the server's clock).
    @ivar with_jid: the other party's bare JID.
    @ivar with_resource: the other party's resource, or C{""}.
    @ivar stanza: the message as it was routed, serialized.
    """

    id: str
    stamp: float
    with_jid: str
    with_resource: str
    stanza: bytes


@dataclass(frozen=True)
class ArchiveQuery:
    """
    What an archive query asks for.  The result set is every message that
    matches C{with_jid}/C{with_resource}, C{start}..C{end} (inclusive),
    C{not_before}, lies strictly between C{after_id} and C{before_id} and,
    when given, has one of C{ids}.  The page is taken from that set after
    C{page_after} (forward) or before C{page_before} (backward, C{""}: from
    the end), or at offset C{index}, C{limit} messages at most.
    """

    with_jid: str | None = None
    with_resource: str | None = None
    start: float | None = None
    end: float | None = None
    #: retention: older messages are as good as gone
    not_before: float | None = None
    after_id: str | None = None
    before_id: str | None = None
    ids: tuple[str, ...] | None = None
    page_after: str | None = None
    page_before: str | None = None
    index: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class ArchivePage:
    """
    One page of a result set, oldest first.

    @ivar complete: no further message of the set lies beyond this page in
        the direction of paging.
    @ivar count: how many messages the whole result set holds.
    @ivar first_index: the position of C{messages[0]} in the result set.
    """

    messages: list[ArchivedMessage]
    complete: bool
    count: int
    first_index: int | None


@dataclass(frozen=True)
class ArchivePrefs:
    """A user's archiving preferences (XEP-0441): the default (C{always},
    C{roster} or C{never}) and the JIDs always and never archived."""

    default: str = "always"
    always: tuple[str, ...] = ()
    never: tuple[str, ...] = ()


class IArchiveStore(Interface):
    """
    Message archives (XEP-0313) and archiving preferences, keyed by the
    owner's prepared localpart and domain: a user's bare JID, or a chat
    room's (C{room@conference.example.org}).  Order in an archive is the
    order of L{append}; stamps never go backwards within an archive.
    """

    def append_many(messages: Sequence[tuple[str, str, ArchivedMessage]]) -> int:
        """L{append} each C{(localpart, domain, message)} in order, in one
        transaction; return how many were added."""

    def append(localpart: str, domain: str, message: ArchivedMessage) -> bool:
        """
        Add a message at the end of the archive and commit it; a message
        whose id the archive already holds is not added again.  Its stamp
        is raised to the archive's latest if the clock went back.

        @return: whether it was added.
        """

    def find(localpart: str, domain: str, query: ArchiveQuery) -> ArchivePage:
        """
        One page of the archive, oldest first.

        @raise convergence.store.errors.UnknownArchiveId: an id the query
            names (C{after_id}, C{before_id}, C{ids}, C{page_after},
            C{page_before}) is not in the archive (or older than
            C{not_before}).
        """

    def bounds(localpart: str, domain: str, not_before: float | None = None
               ) -> tuple[ArchivedMessage, ArchivedMessage] | None:
        """The first and last message of the archive, or C{None} if empty."""

    def expire(before: float, limit: int, domains: Sequence[str] | None = None) -> int:
        """Delete up to C{limit} messages stamped before C{before}, of any
        archive, or only of the archives on C{domains} (user archives on
        the hosted domains, room archives on the chat services: each has
        its own retention); return how many."""

    def delete_archive(localpart: str, domain: str) -> int:
        """Delete a whole archive (a destroyed room's, say); return how
        many messages went."""

    def prefs(localpart: str, domain: str) -> ArchivePrefs | None:
        """The user's preferences, or C{None} if never set."""

    def set_prefs(localpart: str, domain: str, prefs: ArchivePrefs) -> None:
        """Store (replace) the user's preferences."""
