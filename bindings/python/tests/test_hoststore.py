"""Host stores written in Python (R-ST-1, R-ST-2, R-ST-5, R-CC-2)."""
from __future__ import annotations

import gc
import threading
import unittest

import librisk
from librisk import Engine, Level, RiskState
from librisk.stores import HostStore
from support import DAY, T0, DictStore, FullDictStore

CALLBACKS = ("begin", "commit", "rollback", "get_user", "put_user", "get_event", "put_event",
             "user_events", "reserve_seq", "append_history", "list_policies", "put_policy",
             "remove_policy", "get_meta", "put_meta", "view_user", "list_users",
             "read_history")


class Injected(Exception):
    pass


class FailingStore(FullDictStore):
    """Counts every callback and raises on the k-th (0: never)."""

    def __init__(self) -> None:
        super().__init__()
        self.k = 0
        self.calls = 0
        self.failed_in = None

    def _tick(self, name: str) -> None:
        self.calls += 1
        if self.k and self.calls == self.k and name != "rollback":
            self.failed_in = name
            raise Injected(f"injected in {name}")


def _wrap(name):
    base = getattr(FullDictStore, name)

    def method(self, *args):
        if name == "commit":
            try:
                self._tick(name)
            except Injected:
                # A failed commit must leave the store as before (store.h).
                FullDictStore.rollback(self, *args)
                raise
        else:
            self._tick(name)
        return base(self, *args)
    method.__name__ = name
    return method


for _n in CALLBACKS:
    setattr(FailingStore, _n, _wrap(_n))


class TestProtocol(unittest.TestCase):
    def test_dict_store_satisfies_the_protocol(self):
        # R-ST-1: method names are the C callback names.
        self.assertIsInstance(DictStore(), HostStore)

    def test_missing_callback_refused(self):
        class Half:
            def begin(self, user_id):
                return None
        with self.assertRaises(librisk.InvalidArgument):
            Engine(store=Half())

    def test_seed_flow_on_a_python_store_and_close(self):
        # R-ST-5: the engine works the same over a Python store.
        store = FullDictStore()
        e = Engine(store=store, clock=T0 + DAY, actor="admin")
        e.upsert_user("alice", mfa_registered=True, mfa_registered_at=T0 - DAY)
        e.ingest("alice", "a1", "leakedCredentials", "high", T0)
        e.set_policy("p", "high", "block")
        self.assertEqual(e.sign_in("alice").decision.value, "block")
        self.assertEqual([u.id for u in e.users(Level.HIGH)], ["alice"])
        self.assertEqual(len(list(e.history("alice"))), 2)
        e.password_changed("alice", secure=True)
        self.assertEqual(e.user("alice").risk_state, RiskState.REMEDIATED)
        self.assertFalse(store.closed)
        e.close()
        self.assertTrue(store.closed)  # the engine closes its store

    def test_threads(self):
        # R-CC-1 over a Python store: parallel users, one lock inside the store.
        e = Engine(store=FullDictStore(), clock=T0)

        def work(n):
            for i in range(30):
                e.ingest(f"u{n}", f"u{n}-{i}", "unfamiliarFeatures", "low", T0)
        ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(u.active_events for u in e.users()), [30] * 4)
        self.assertEqual(len(list(e.history())), 120)
        e.close()

    def test_callbacks_kept_alive(self):
        # CFUNCTYPE objects live as long as the engine, even if nothing else
        # refers to the store object.
        e = Engine(store=FullDictStore(), clock=T0)
        gc.collect()
        e.ingest("u", "a", "leakedCredentials", "high", T0)
        self.assertEqual(e.user("u").risk_level, Level.HIGH)
        e.close()


class TestRollbackOnKthCallback(unittest.TestCase):
    """R-CC-2: a store failure anywhere rolls the whole operation back."""

    def _prove(self, setup, op, check_changed):
        store = FailingStore()
        e = Engine(store=store, clock=T0 + DAY, actor="admin")
        setup(e)
        k, failures = 1, 0
        while True:
            before = store.snapshot()
            store.k, store.calls, store.failed_in = store.calls + k, store.calls, None
            try:
                op(e)
            except librisk.RiskError as exc:
                self.assertIsNotNone(store.failed_in, f"k={k}: failed without injection: {exc}")
                self.assertIsInstance(exc.__cause__, Injected, f"k={k} ({store.failed_in})")
                self.assertEqual(store.snapshot(), before, f"k={k} ({store.failed_in})")
                failures += 1
                k += 1
                continue
            if store.failed_in is None:
                break  # k passed the number of callbacks: the op succeeded
            # A failure in a read-only path may be tolerated only if nothing
            # changed — never a half-applied write.
            self.fail(f"k={k}: injected in {store.failed_in} but the call succeeded")
        store.k = 0
        self.assertGreater(failures, 3)
        check_changed(e)
        e.close()

    def test_ingest(self):
        self._prove(lambda e: None,
                    lambda e: e.ingest("u", "a", "leakedCredentials", "high", T0),
                    lambda e: self.assertEqual(e.user("u").risk_level, Level.HIGH))

    def test_dismiss(self):
        def setup(e):
            for i in range(3):
                e.ingest("u", f"a{i}", "leakedCredentials", "medium", T0)
        self._prove(setup, lambda e: e.dismiss("u"),
                    lambda e: self.assertEqual(e.user("u").risk_state, RiskState.DISMISSED))

    def test_policy_set(self):
        self._prove(lambda e: None, lambda e: e.set_policy("p", "low", "block"),
                    lambda e: self.assertEqual([p.name for p in e.policies()], ["p"]))


if __name__ == "__main__":
    unittest.main()
