"""The SQLite message archive (IArchiveStore) on its own."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from convergence.store.errors import UnknownArchiveId
from convergence.store.interfaces import ArchivedMessage, ArchivePrefs, ArchiveQuery
from convergence.store.sqlite_mam import SqliteArchiveStore


def message(id_: str, stamp: float, with_jid: str = "bob@x", resource: str = "") -> ArchivedMessage:
    return ArchivedMessage(id_, stamp, with_jid, resource, f"<m id='{id_}'/>".encode())


class SqliteArchiveStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = SqliteArchiveStore(":memory:")
        self.addCleanup(self.store.close)

    def ids(self, **query) -> list[str]:
        return [m.id for m in self.store.find("alice", "x", ArchiveQuery(**query)).messages]

    def test_order_is_arrival_even_when_the_clock_goes_back(self) -> None:
        self.store.append("alice", "x", message("a", 100.0))
        self.store.append("alice", "x", message("b", 50.0))  # clock stepped back
        self.store.append("alice", "x", message("c", 100.0))
        page = self.store.find("alice", "x", ArchiveQuery())
        self.assertEqual([m.id for m in page.messages], ["a", "b", "c"])
        self.assertEqual([m.stamp for m in page.messages], [100.0, 100.0, 100.0])
        self.assertEqual(self.ids(page_after="b"), ["c"])
        self.assertEqual(self.ids(page_before="b"), ["a"])

    def test_an_id_is_kept_once(self) -> None:
        self.assertTrue(self.store.append("alice", "x", message("a", 1.0)))
        self.assertFalse(self.store.append("alice", "x", message("a", 2.0)))
        self.assertEqual(self.ids(), ["a"])
        # the same id in another archive is another message
        self.assertTrue(self.store.append("bob", "x", message("a", 1.0)))

    def test_pages_count_and_index(self) -> None:
        for i in range(7):
            self.store.append("alice", "x", message(f"m{i}", float(i)))
        page = self.store.find("alice", "x", ArchiveQuery(limit=3, page_before=""))
        self.assertEqual([m.id for m in page.messages], ["m4", "m5", "m6"])
        self.assertEqual((page.complete, page.count, page.first_index), (False, 7, 4))
        page = self.store.find("alice", "x", ArchiveQuery(limit=3, page_before="m1"))
        self.assertEqual([m.id for m in page.messages], ["m0"])
        self.assertTrue(page.complete)
        page = self.store.find("alice", "x", ArchiveQuery(limit=3, after_id="m1",
                                                          before_id="m5"))
        self.assertEqual(([m.id for m in page.messages], page.count, page.complete),
                         (["m2", "m3", "m4"], 3, True))
        page = self.store.find("alice", "x", ArchiveQuery(limit=0))
        self.assertEqual((page.messages, page.count, page.first_index, page.complete),
                         ([], 7, None, False))

    def test_filters(self) -> None:
        self.store.append("alice", "x", message("a", 1.0, "bob@x", "phone"))
        self.store.append("alice", "x", message("b", 2.0, "bob@x", ""))
        self.store.append("alice", "x", message("c", 3.0, "carol@x", ""))
        self.store.append("bob", "x", message("d", 3.0, "alice@x", ""))
        self.assertEqual(self.ids(with_jid="bob@x"), ["a", "b"])
        self.assertEqual(self.ids(with_jid="bob@x", with_resource="phone"), ["a"])
        self.assertEqual(self.ids(start=2.0), ["b", "c"])
        self.assertEqual(self.ids(end=2.0), ["a", "b"])
        self.assertEqual(self.ids(not_before=2.5), ["c"])
        self.assertEqual(self.ids(ids=("c", "a")), ["a", "c"])

    def test_unknown_ids(self) -> None:
        self.store.append("alice", "x", message("a", 1.0))
        self.store.append("bob", "x", message("theirs", 1.0))
        for query in (ArchiveQuery(page_after="theirs"), ArchiveQuery(page_before="zz"),
                      ArchiveQuery(after_id="zz"), ArchiveQuery(before_id="theirs"),
                      ArchiveQuery(ids=("a", "theirs")),
                      ArchiveQuery(page_after="a", not_before=5.0)):
            self.assertRaises(UnknownArchiveId, self.store.find, "alice", "x", query)

    def test_bounds(self) -> None:
        self.assertIsNone(self.store.bounds("alice", "x"))
        for i in range(3):
            self.store.append("alice", "x", message(f"m{i}", float(i)))
        first, last = self.store.bounds("alice", "x")
        self.assertEqual((first.id, last.id), ("m0", "m2"))
        first, _ = self.store.bounds("alice", "x", not_before=1.0)
        self.assertEqual(first.id, "m1")

    def test_expire_in_batches(self) -> None:
        for i in range(5):
            self.store.append("alice", "x", message(f"a{i}", float(i)))
            self.store.append("bob", "x", message(f"b{i}", float(i)))
        self.assertEqual(self.store.expire(3.0, 4), 4)
        self.assertEqual(self.store.expire(3.0, 4), 2)
        self.assertEqual(self.store.expire(3.0, 4), 0)
        self.assertEqual(self.ids(), ["a3", "a4"])

    def test_expire_on_some_domains(self) -> None:
        """A sweep over some domains (users' or rooms') spares the others."""
        for i in range(3):
            self.store.append("alice", "x", message(f"a{i}", float(i)))
            self.store.append("room", "conference.x", message(f"r{i}", float(i)))
        self.assertEqual(self.store.expire(2.0, 10, ["conference.x"]), 2)
        self.assertEqual(self.store.expire(2.0, 10, []), 0)
        self.assertEqual(self.ids(), ["a0", "a1", "a2"])
        self.assertEqual(self.store.expire(2.0, 10, ("x", "y")), 2)
        self.assertEqual(self.ids(), ["a2"])
        room = self.store.find("room", "conference.x", ArchiveQuery()).messages
        self.assertEqual([m.id for m in room], ["r2"])

    def test_delete_archive(self) -> None:
        for i in range(3):
            self.store.append("room", "conference.x", message(f"r{i}", float(i)))
        self.store.append("alice", "x", message("a", 1.0))
        self.store.append("room", "x", message("same name, other domain", 1.0))
        self.assertEqual(self.store.delete_archive("room", "conference.x"), 3)
        self.assertEqual(self.store.find("room", "conference.x", ArchiveQuery()).count, 0)
        self.assertEqual(self.store.delete_archive("room", "conference.x"), 0)
        self.assertEqual(self.ids(), ["a"])
        self.assertEqual(self.store.find("room", "x", ArchiveQuery()).count, 1)

    def test_prefs(self) -> None:
        self.assertIsNone(self.store.prefs("alice", "x"))
        prefs = ArchivePrefs("roster", ("bob@x",), ("carol@x/phone",))
        self.store.set_prefs("alice", "x", prefs)
        self.assertEqual(self.store.prefs("alice", "x"), prefs)
        self.store.set_prefs("alice", "x", ArchivePrefs("never"))
        self.assertEqual(self.store.prefs("alice", "x"), ArchivePrefs("never"))
        self.assertIsNone(self.store.prefs("bob", "x"))


class WriteBatchTests(SynchronousTestCase):
    """Archive writes share a database job while one is queued."""

    def test_writes_queued_meanwhile_share_one_job(self) -> None:
        from twisted.internet.defer import Deferred

        from convergence.store.interfaces import ArchivedMessage
        from convergence.xmpp.mam.archiver import WriteBatch

        jobs: list = []

        class Server:
            def run_in_db(self, f):
                d = Deferred()
                jobs.append((f, d))
                return d

        class Store:
            batches: list = []

            def append_many(self, batch):
                self.batches.append([m.id for _, _, m in batch])
                return len(batch)

        store = Store()
        writes = WriteBatch(Server(), store)
        for n in range(3):
            writes.add("alice", "localhost", ArchivedMessage(f"id{n}", 1.0, "bob@localhost",
                                                             "", b"<message/>"))
        self.assertEqual(len(jobs), 1)
        f, d = jobs.pop(0)
        d.callback(f())
        writes.add("alice", "localhost", ArchivedMessage("id3", 2.0, "bob@localhost", "",
                                                         b"<message/>"))
        f, d = jobs.pop(0)
        d.callback(f())
        self.assertEqual(store.batches, [["id0", "id1", "id2"], ["id3"]])
