"""The SQLite reference store (R-ST-6, R-CC-1, R-CC-2), including two
processes hammering the same users of one file."""
from __future__ import annotations

import multiprocessing
import time
import unittest
from datetime import timedelta

import librisk
from librisk import Engine, Level, RiskState, SQLiteStore
from librisk.stores import UserRecord
from support import DAY, T0, TempDirCase

USERS = 4
OPS = 150


def _ops(proc: int):
    """The deterministic operations of one process: ingest own events for
    shared users, resolve every fifth one (order-independent in the end)."""
    for i in range(OPS):
        user = f"user{i % USERS}"
        eid = f"p{proc}-{i}"
        yield ("ingest", user, eid, ("low", "medium", "high")[i % 3], T0 + timedelta(minutes=i))
        if i % 5 == 4:
            yield ("resolve", f"p{proc}-{i - 1}")


def _apply(engine: Engine, proc: int, pause: bool = False) -> None:
    for n, op in enumerate(_ops(proc)):
        if pause and n % 10 == 9:
            # SQLite's busy handler sleeps; without a breather the lock holder
            # could run to the end before the other process wakes up.
            time.sleep(0.002)
        if op[0] == "ingest":
            _, user, eid, level, at = op
            engine.ingest(user, eid, "unfamiliarFeatures", level, at, actor=f"p{proc}")
        else:
            engine.resolve(op[1], actor=f"p{proc}")
        engine.sign_in(op[1] if op[0] == "ingest" else "user0")


def _worker(path: str, proc: int, barrier) -> None:
    with Engine(store=SQLiteStore(path, synchronous="OFF"), clock=T0 + DAY) as e:
        barrier.wait(60)  # both processes start hammering together
        _apply(e, proc, pause=True)


def _state(e: Engine):
    users = {u.id: (u.risk_level, u.risk_state, u.score, u.active_events) for u in e.users()}
    events = {ev.id: (ev.state, ev.close_reason, ev.closed_by)
              for uid in users for ev in e.events(uid)}
    return users, events


class TestSQLiteStore(TempDirCase):

    def test_roundtrip_and_reopen(self):
        # R-ST-2, R-ST-3: everything persists through the canonical bytes.
        with Engine(store=SQLiteStore(self.path), clock=T0 + DAY, actor="admin") as e:
            e.upsert_user("alice", mfa_registered=True, mfa_registered_at=T0 - DAY)
            e.ingest("alice", "a1", "leakedCredentials", "high", T0, ip="10.1.2.3")
            e.set_policy("block-high", "high", "block", exclude=["bob"])
            before = _state(e), list(e.history()), list(e.policies())
        with Engine(store=SQLiteStore(self.path), clock=T0 + DAY) as e:
            self.assertEqual((_state(e), list(e.history()), list(e.policies())), before)
            self.assertEqual(e.sign_in("alice").decision.value, "block")
            self.assertEqual(e.event("a1").ip, "10.1.2.3")
            self.assertEqual([h.seq for h in e.history("alice")], [1, 2])
            e.remove_policy("block-high")
            with self.assertRaises(librisk.NotFound):
                e.remove_policy("block-high")

    def test_stale_version_is_a_conflict(self):
        # R-ST-6: put_user with a version that does not follow the stored one.
        store = SQLiteStore(self.path)
        txn = store.begin("u")
        store.put_user(txn, UserRecord("u", 1, Level.NONE, b"x"))
        with self.assertRaises(librisk.Conflict):
            store.put_user(txn, UserRecord("u", 1, Level.NONE, b"x"))  # stored is 1 now
        store.put_user(txn, UserRecord("u", 2, Level.NONE, b"y"))
        store.rollback(txn)
        self.assertIsNone(store.view_user("u"))  # R-CC-2: rolled back
        store.close()

    def test_python_exception_rolls_back(self):
        # R-CC-2: a failing statement inside the transaction rolls everything back.
        class Flaky(SQLiteStore):
            fail = False

            def append_history(self, txn, item):
                if self.fail:
                    raise OSError("disk full")
                super().append_history(txn, item)
        store = Flaky(self.path)
        with Engine(store=store, clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "low", T0)
            store.fail = True
            with self.assertRaises(librisk.StoreError) as cm:
                e.ingest("u", "b", "leakedCredentials", "high", T0)
            self.assertIsInstance(cm.exception.__cause__, OSError)
            store.fail = False
            self.assertEqual(e.user("u").risk_level, Level.LOW)
            with self.assertRaises(librisk.NotFound):
                e.event("b")

    def test_policy_change_reaches_the_other_engine(self):
        # R-ST-6, R-OP-6: engines on one database each cache the policies;
        # a change by one reaches the other's next sign-in (the store's
        # policy generation), one call and bulk alike.
        with Engine(store=SQLiteStore(self.path), clock=T0 + DAY, actor="a") as a, \
                Engine(store=SQLiteStore(self.path), clock=T0 + DAY, actor="b") as b:
            a.ingest("alice", "a1", "leakedCredentials", "high", T0)
            self.assertEqual(b.sign_in("alice").decision.value, "allow")  # b caches: none
            a.set_policy("block-high", "high", "block")
            self.assertEqual(b.sign_in("alice").decision.value, "block")
            a.set_policy("block-high", "high", "block", mode="off")
            self.assertEqual([v.decision.value for v in b.sign_in_many(["alice"])], ["allow"])
            b.set_policy("block-high", "high", "block")  # and the other way round
            self.assertEqual(a.sign_in("alice").decision.value, "block")
            a.remove_policy("block-high")
            self.assertEqual(b.sign_in("alice").decision.value, "allow")
            self.assertEqual(a.sign_in("alice").decision.value, "allow")

    def test_refresh_policies_without_a_generation(self):
        # A host store with no policies_generation: the engine sees another
        # engine's change after refresh_policies().
        class Plain(SQLiteStore):
            policies_generation = None  # type: ignore[assignment]

        with Engine(store=Plain(self.path), clock=T0 + DAY, actor="a") as a, \
                Engine(store=Plain(self.path), clock=T0 + DAY, actor="b") as b:
            a.ingest("alice", "a1", "leakedCredentials", "high", T0)
            self.assertEqual(b.sign_in("alice").decision.value, "allow")
            a.set_policy("block-high", "high", "block")
            self.assertEqual(b.sign_in("alice").decision.value, "allow")  # cached
            b.refresh_policies()
            self.assertEqual(b.sign_in("alice").decision.value, "block")
        with self.assertRaises(librisk.InvalidArgument):
            b.refresh_policies()  # closed

    def test_two_processes_equal_a_serial_replay(self):
        # R-ST-6, R-CC-1: two processes on one file, same users; the result
        # equals running both operation lists one after the other.
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        SQLiteStore(self.path).close()  # create the schema once
        procs = [ctx.Process(target=_worker, args=(self.path, p, barrier)) for p in (0, 1)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            self.assertEqual(p.exitcode, 0)
        with Engine.memory(clock=T0 + DAY) as serial:
            _apply(serial, 0)
            _apply(serial, 1)
            expected = _state(serial)
            expected_items = len(list(serial.history()))
        with Engine(store=SQLiteStore(self.path), clock=T0 + DAY) as shared:
            self.assertEqual(_state(shared), expected)
            feed = list(shared.history())
        self.assertEqual(len(feed), expected_items)
        self.assertEqual([h.seq for h in feed], list(range(1, len(feed) + 1)))
        switches = sum(1 for a, b in zip(feed, feed[1:]) if a.actor != b.actor)
        self.assertGreaterEqual(switches, 2, "the two processes never interleaved")
        self.assertTrue(all(s == RiskState.AT_RISK for (_l, s, _sc, _n) in expected[0].values()))


if __name__ == "__main__":
    unittest.main()
