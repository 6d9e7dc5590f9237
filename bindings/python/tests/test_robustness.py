"""Regression tests of the second bindings review (2026-12-07): a store or
caller doing something odd must get a clean exception, never a crash, a
success on failure, or an error about something else. Each test fails
without its fix."""
from __future__ import annotations

import gc
import os
import tempfile
import unittest
from datetime import timedelta

import librisk
from librisk import (Anchor, Busy, Durability, Engine, InvalidArgument, Level, Scoring,
                     SQLiteStore, StoreError)
from support import T0, FullDictStore


class CountingStore(FullDictStore):
    closes = 0

    def close(self) -> None:
        self.closes += 1


class TestSharedStoreObject(unittest.TestCase):
    """R-ST-6: engines may share a store. Closing one of two engines over
    one store object closed the object under the other (SQLiteStore: a
    segfault in the other engine's threads)."""

    def test_the_last_engine_closes_the_store(self) -> None:
        store = CountingStore()
        a = Engine(store=store, clock=T0)
        b = Engine(store=store, clock=T0)
        a.close()
        self.assertEqual(store.closes, 0)
        b.ingest("u", "e1", "leakedCredentials", "high", T0)
        self.assertEqual(b.user("u").risk_level, Level.HIGH)
        b.close()
        self.assertEqual(store.closes, 1)

    def test_sqlite_store_keeps_working_for_the_other_engine(self) -> None:
        # Engine a closes while b is inside a transaction on the same store
        # object (here: from b's own get_user, so the timing is certain).
        class ClosingMidway(SQLiteStore):
            other = None

            def get_user(self, txn, id):  # type: ignore[no-untyped-def]
                if self.other is not None:
                    other, self.other = self.other, None
                    other.close()
                return super().get_user(txn, id)

        with tempfile.TemporaryDirectory() as d:
            store = ClosingMidway(os.path.join(d, "risk.db"), synchronous="OFF")
            a = Engine(store=store, clock=T0)
            with Engine(store=store, clock=T0) as b:
                store.other = a
                b.ingest("u", "e1", "leakedCredentials", "high", T0)
                self.assertTrue(a.closed)
                self.assertEqual(b.user("u").risk_level, Level.HIGH)


class TestCallbackFailures(unittest.TestCase):
    def test_an_exception_whose_text_has_a_nul_is_a_store_error(self) -> None:
        # Its message could not be encoded, the exception escaped into C,
        # and the ingest reported success with nothing stored.
        class Failing(FullDictStore):
            def put_event(self, txn, event):  # type: ignore[no-untyped-def]
                raise OSError("disk\0full \udcff")

        with Engine(store=Failing(), clock=T0) as e:
            for _ in range(5):
                with self.assertRaises(StoreError) as cm:
                    e.ingest("u", "e1", "leakedCredentials", "high", T0)
                self.assertIn("OSError", str(cm.exception))
                self.assertIsInstance(cm.exception.__cause__, OSError)

    def test_a_record_of_the_wrong_type_is_a_store_error(self) -> None:
        # It surfaced as InvalidArgument, which says the caller erred (R-IV-1).
        class Wrong(FullDictStore):
            def get_user(self, txn, id):  # type: ignore[no-untyped-def]
                return "not bytes"

            def reserve_seq(self, txn):  # type: ignore[no-untyped-def]
                return "7"

        with Engine(store=Wrong(), clock=T0) as e:
            with self.assertRaises(StoreError):
                e.ingest("u", "e1", "leakedCredentials", "high", T0)

    def test_a_record_for_another_user_is_refused(self) -> None:
        # R-ST-3 through the C engine's guard: the store answers u's record
        # for v; an ingest for v must not change u.
        class Swapping(FullDictStore):
            swap = False

            def get_user(self, txn, id):  # type: ignore[no-untyped-def]
                return super().get_user(txn, "u" if self.swap and id == "v" else id)

        store = Swapping()
        with Engine(store=store, clock=T0) as e:
            e.ingest("u", "e1", "leakedCredentials", "low", T0)
            e.ingest("v", "e2", "leakedCredentials", "low", T0)
            store.swap = True
            with self.assertRaises(librisk.Corrupt):
                e.ingest("v", "e3", "leakedCredentials", "high", T0)
            store.swap = False
            self.assertEqual(e.user("u").risk_level, Level.LOW)
            self.assertEqual(e.user("v").risk_level, Level.LOW)


class TestErrorMessages(unittest.TestCase):
    def test_a_message_is_never_an_earlier_failures(self) -> None:
        class BigMeta(FullDictStore):
            big = False

            def get_meta(self, txn, key):  # type: ignore[no-untyped-def]
                return b"x" * 100_000 if self.big else super().get_meta(txn, key)

        store = BigMeta()
        with Engine(store=store, clock=T0) as e:
            with self.assertRaises(InvalidArgument):
                e.upsert_user("bad\tid")
            store.big = True
            with self.assertRaises(librisk.RiskError) as cm:
                e.set_policy("p", "high", "block")
            self.assertNotIn("control character", cm.exception.message)

    def test_a_failed_call_leaves_no_cycle_holding_the_engine(self) -> None:
        # The exception's traceback held _check's frame, which held the
        # exception: the dropped engine (and its journal's lock) lived on
        # until the cycle collector ran.
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "risk.journal")
            gc.disable()
            try:
                e = Engine.open(path)
                try:  # not assertRaises: it clears the traceback's frames
                    e.user("nobody")
                    self.fail("NotFound expected")
                except librisk.NotFound:
                    pass
                del e
                try:
                    again = Engine.open(path)
                except Busy:
                    self.fail("the dropped engine still holds the journal")
                again.close()
            finally:
                gc.enable()


class TestSqliteBegin(unittest.TestCase):
    def test_a_transaction_left_by_an_interrupted_begin_is_undone(self) -> None:
        # BEGIN ran, then an interrupt: the engine rolls nothing back, and
        # every later call on that thread failed ("within a transaction").
        with tempfile.TemporaryDirectory() as d:
            store = SQLiteStore(os.path.join(d, "risk.db"), synchronous="OFF")
            with Engine(store=store, clock=T0) as e:
                store._conn("writer").execute("BEGIN IMMEDIATE")
                e.ingest("u", "e1", "leakedCredentials", "high", T0)
                self.assertEqual(e.user("u").risk_level, Level.HIGH)


class TestValuesRefused(unittest.TestCase):
    def test_anchor_fields_out_of_range(self) -> None:
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "e1", "leakedCredentials", "high", T0)
            a = e.history_anchor()
            for bad in (Anchor(seq=a.seq + 2 ** 64, subjects=a.subjects, hash=a.hash),
                        Anchor(seq=a.seq, subjects=-1, hash=a.hash),
                        Anchor(seq=a.seq, subjects=a.subjects, hash="x" * 32)):  # type: ignore[arg-type]
                with self.assertRaises(InvalidArgument):
                    e.verify_history(bad)
            e.verify_history(a)

    def test_receipt_key_of_the_wrong_type(self) -> None:
        with Engine.memory(clock=T0, receipt_key=b"k" * 16) as e:
            with self.assertRaises(InvalidArgument):
                e.verify_receipt("x", key="k" * 16)  # type: ignore[arg-type]

    def test_scoring_periods_and_booleans(self) -> None:
        for bad in (Scoring(aging_low=timedelta(microseconds=1)),
                    Scoring(aging_low=True),  # type: ignore[arg-type]
                    Scoring(weights=(True, 3, 9))):  # type: ignore[arg-type]
            with self.assertRaises(InvalidArgument):
                Engine.memory(clock=T0, scoring=bad).close()


class TestDurability(unittest.TestCase):
    def test_an_enum_or_its_spelling(self) -> None:
        from pathlib import Path
        with tempfile.TemporaryDirectory() as d:
            for i, mode in enumerate((Durability.NORMAL, "off", "FULL", Durability.FULL)):
                with Engine.open(Path(d) / f"j{i}", mode) as e:
                    e.ingest("u", "e1", "leakedCredentials", "high", T0)
            for bad in ("fast", 1, None):
                with self.assertRaises(InvalidArgument):
                    Engine.open(Path(d) / "bad", bad)  # type: ignore[arg-type]


class TestTransition(unittest.TestCase):
    """R-EV-6: the state machine as a pure function, here from Python."""

    def test_the_table(self) -> None:
        from librisk import Action, CloseReason, EventState, TransitionError, transition
        A, C = EventState.ACTIVE, EventState.CLOSED
        self.assertEqual(transition(A, CloseReason.NONE, Action.RESOLVE),
                         (C, CloseReason.RESOLVED))
        self.assertEqual(transition("active", "none", "false_positive"),
                         (C, CloseReason.FALSE_POSITIVE))
        # R-EV-3: the three manual closings reopen; R-EV-4: the others never
        for r in (CloseReason.RESOLVED, CloseReason.FALSE_POSITIVE, CloseReason.IGNORED):
            self.assertEqual(transition(C, r, Action.REACTIVATE), (A, CloseReason.NONE))
        for r in (CloseReason.REMEDIATED, CloseReason.DISMISSED, CloseReason.AGED):
            with self.assertRaises(TransitionError):
                transition(C, r, Action.REACTIVATE)
        # R-EV-5: closing a closed event, reopening an active one
        with self.assertRaises(TransitionError):
            transition(C, CloseReason.RESOLVED, Action.IGNORE)
        with self.assertRaises(TransitionError):
            transition(A, CloseReason.NONE, Action.REACTIVATE)
        with self.assertRaises(InvalidArgument):
            transition(A, CloseReason.RESOLVED, Action.IGNORE)
        with self.assertRaises(InvalidArgument):
            transition(A, CloseReason.NONE, "close")


class TestExplain(unittest.TestCase):
    """R-SC-6 from Python as a pure function: librisk.explain scores events
    that need no engine, exactly as the engine scores a stored user's."""

    def test_equals_the_engines_explanation(self) -> None:
        from librisk import explain
        scoring = Scoring(aging_low=timedelta(days=30), type_aging={"atypicalTravel": timedelta(days=1)})
        now = T0 + timedelta(days=40)
        with Engine.memory(actor="admin", clock=now, scoring=scoring) as e:
            e.ingest("u", "h1", "leakedCredentials", "high", T0)
            e.ingest("u", "l1", "anonymizedIPAddress", "low", T0)           # aged by now
            e.ingest("u", "l2", "anonymizedIPAddress", "low", T0 + timedelta(days=39))
            e.ingest("u", "m1", "atypicalTravel", "medium", T0 + timedelta(days=39, hours=1))
            e.ingest("u", "m2", "maliciousIPAddress", "medium", T0 + timedelta(days=2))
            e.resolve("m2")
            stored = e.explain("u")
            events = e.events("u")
        pure = explain(events, now, scoring)
        self.assertEqual(pure, stored)
        # h1, l2 and m1 count (m1's type ages in a day: 23 h old); l1 aged
        # after 30 days; m2 is resolved
        self.assertEqual((pure.level, pure.counted), (Level.HIGH, 3))
        counted = {i.event_id for i in pure.items if i.counted}
        self.assertEqual(counted, {"h1", "l2", "m1"})
        self.assertTrue(next(i for i in pure.items if i.event_id == "m1").type_override)

    def test_defaults_empty_and_refusals(self) -> None:
        from librisk import Event, explain
        ev = Event("e1", "u", "leakedCredentials", Level.MEDIUM, T0)
        self.assertEqual(explain([ev], T0).level, Level.MEDIUM)
        self.assertEqual(explain([], T0).score, 0)
        with self.assertRaises(InvalidArgument):
            explain(["e1"], T0)  # type: ignore[list-item]
        with self.assertRaises(InvalidArgument):  # closed without a reason
            explain([Event("e1", "u", "t", Level.LOW, T0, state="closed")], T0)  # type: ignore[arg-type]


if __name__ == "__main__":
    unittest.main()
