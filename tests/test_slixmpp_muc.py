"""
Chat rooms with a real client library against a real ``twistd -n
convergence``: slixmpp's xep_0045 plugin as alice, bob and carol create,
configure, join, talk, page through a room's archive (xep_0313), get
history, change nicknames, kick, ban, need a room's password, register a
nickname with a room, are refused by a members-only room, and find a
persistent room and its archive again after a restart.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.test_offline_durable import wait_for_port
from tests.test_service import BIN, free_port

SCRIPT = Path(__file__).with_name("slixmpp_muc.py")
ROOM = "cave@conference.localhost"
CLUB = "club@conference.localhost"


class SlixmppMucTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.work = Path(self.mktemp())
        self.work.mkdir(parents=True)
        self.data = self.work / "convergence-data"
        for user, password in (("alice", "wonderland"), ("bob", "builder"),
                               ("carol", "carol-pw")):
            subprocess.run([str(BIN / "convergencectl"), "adduser", f"{user}@localhost",
                            "--password", password], cwd=self.work, check=True,
                           capture_output=True, timeout=60)

    def start(self) -> tuple[subprocess.Popen, int]:
        port = free_port()
        proc = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
             "--c2s-port", str(port), "--c2s-tls-port", str(free_port()),
             "--sip-port", str(free_port()), "--http-port", str(free_port())],
            cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self._stop, proc)
        wait_for_port(port, proc)
        return proc, port

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(15)
        proc.stderr.close()

    def client(self, phase: str, port: int) -> dict:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), phase, str(port),
             str(self.data / "tls" / "localhost.pem")],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        return json.loads(done.stdout.strip().splitlines()[-1])

    def test_rooms(self) -> None:
        proc, port = self.start()
        r = self.client("first", port)
        self.assertEqual(r["create_codes"], [110, 170, 201])
        self.assertEqual(r["bob_codes"], [110, 170])
        self.assertEqual(r["bob_saw"], [f"{ROOM}/Alice", f"{ROOM}/Bob"])
        talk = [[f"{ROOM}/{who.title()}", f"{who} {n}"] for n in range(3)
                for who in ("alice", "bob")]
        # one order for everyone, each sender's messages in the order sent
        self.assertEqual(r["alice_got"], r["bob_got"])
        self.assertEqual(sorted(r["alice_got"]), sorted(talk))
        for who in ("alice", "bob"):
            self.assertEqual([m for m in r["alice_got"] if m[1].startswith(who)],
                             [m for m in talk if m[1].startswith(who)])
        # the archive: the subject and the talk (in the order the room
        # reflected them: bob's may pass alice's subject), from the occupant
        # JIDs, two a page, with the ids the live messages carried
        archived = r["archive"]
        self.assertEqual(r["pages"], [2, 2, 2, 1])
        self.assertEqual([(m["inner_from"], m["subject"]) for m in archived if m["subject"]],
                         [(f"{ROOM}/Alice", "Brewing")])
        said = [m for m in archived if m["body"]]
        self.assertEqual([[m["inner_from"], m["body"]] for m in said], r["bob_got"])
        self.assertEqual({m["from"] for m in archived}, {ROOM})
        self.assertEqual([m["id"] for m in said], r["live_ids"])
        self.assertEqual(len({m["id"] for m in archived}), 7)
        self.assertEqual(r["carol_archive"], "forbidden")
        self.assertEqual(r["room_features"],
                         ["jabber:iq:register", "urn:xmpp:mam:2", "urn:xmpp:sid:0"])
        first_archive = archived
        self.assertEqual(r["carol_subject"], "Brewing")
        self.assertEqual(r["carol_history"], r["alice_got"][-4:])
        self.assertEqual(r["new_nick"], "Robert")
        self.assertTrue(r["alice_saw_303"])
        self.assertEqual(r["roster"], ["Alice", "Carol", "Robert"])
        self.assertEqual(r["carol_kicked"], [[110, 307]])
        self.assertEqual(r["banned_carol"], "forbidden")
        self.assertEqual(r["outcasts"], ["carol@localhost"])
        self.assertEqual((r["secret_without"], r["secret_wrong"], r["secret_right"]),
                         ("not-authorized", "not-authorized", "joined"))
        registered = r["carol_registers"]
        self.assertIn("muc#register_roomnick", registered["form_fields"])
        self.assertEqual(registered["submitted"], "result")
        self.assertEqual((registered["registered"], registered["username"]), (True, "Witch"))
        self.assertEqual(registered["reserved"], ["Witch"])
        self.assertEqual(r["bob_takes_witch"], "conflict")
        self.assertEqual(r["club_refuses_carol"], "registration-required")
        self.assertEqual(r["club_takes_bob"], "joined")
        self.assertEqual(r["carol_member_list"], "forbidden")

        proc.send_signal(signal.SIGTERM)
        # twistd ends by re-raising the signal that stopped it
        self.assertIn(proc.wait(30), (0, -signal.SIGTERM))
        proc, port = self.start()
        r = self.client("second", port)
        self.assertEqual(r["public"], [[ROOM, "The Cave"], [CLUB, "club"]])
        self.assertEqual(r["rejoin_codes"], [110, 170])  # no 201: the room was there
        self.assertEqual(r["rejoin_affiliation"], "owner")
        self.assertEqual(r["subject"], "Brewing")
        # the archive outlived the restart, ids and all
        self.assertEqual(r["pages"], [3, 3, 1])
        self.assertEqual(r["archive"], first_archive)
        self.assertEqual(r["club_takes_bob"], "joined")
        self.assertEqual(r["club_members"], ["bob@localhost"])
        self.assertEqual(r["self_ping"], "result")
        self.assertEqual(r["ping_after_leaving"], "not-acceptable")
