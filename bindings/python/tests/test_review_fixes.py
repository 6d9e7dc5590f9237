"""Regression tests of the bindings review: one class per bug, each test
failing without its fix (struct layout, error mapping, lifetime, leaks)."""
from __future__ import annotations

import ctypes
import gc
import os
import re
import sys
import tempfile
import threading
import unittest
import weakref
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import librisk
from librisk import (Engine, InvalidArgument, Level, Policy, RiskError, Scoring, SQLiteStore,
                     StoreError, Unsupported)
from librisk import _ffi
from support import T0, DictStore, FullDictStore

HEADERS = Path(__file__).resolve().parents[3] / "include"


# ------------------------------------------------------------ header parsing

_C_INTS = {"uint8_t": ctypes.c_uint8, "uint32_t": ctypes.c_uint32, "int64_t": ctypes.c_int64,
           "uint64_t": ctypes.c_uint64, "size_t": ctypes.c_size_t}


def c_struct_fields(name: str) -> List[Tuple[str, str, int]]:
    """(field, kind, count) of ``struct name`` in the public headers, in
    order; kind is a C integer type, "ptr" or "fnptr"; count > 1 for arrays."""
    text = "".join(p.read_text() for p in sorted(HEADERS.rglob("*.h")))
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    m = re.search(r"struct\s+" + name + r"\s*\{(.*?)\n\}", text, flags=re.S)
    if m is None:
        raise AssertionError(f"struct {name} not found in {HEADERS}")
    fields = []
    for decl in (d.strip() for d in m.group(1).split(";")):
        if not decl:
            continue
        fn = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
        if fn:
            fields.append((fn.group(1), "fnptr", 1))
            continue
        d = re.fullmatch(r"(.*?)(\w+)\s*(?:\[(\d+)\])?", " ".join(decl.split()))
        assert d, decl
        ctype, field, count = d.group(1).strip(), d.group(2), int(d.group(3) or 1)
        kind = "ptr" if "*" in ctype else ctype.replace("const ", "")
        if kind.endswith("_fn"):  # a typedef of a function pointer (risk_clock_fn)
            kind = "fnptr"
        fields.append((field, kind, count))
    return fields


def c_layout(fields: List[Tuple[str, str, int]]) -> Tuple[Dict[str, int], int]:
    """Offsets and size by the C rules (natural alignment), from the header."""
    offsets, off, align = {}, 0, 1
    for field, kind, count in fields:
        size = ctypes.sizeof(ctypes.c_void_p) if kind in ("ptr", "fnptr") else \
            ctypes.sizeof(_C_INTS[kind])
        off = (off + size - 1) // size * size
        offsets[field] = off
        off += size * count
        align = max(align, size)
    return offsets, (off + align - 1) // align * align


# Every struct of the public headers the bindings lay out with ctypes.
BOUND = {"risk_store": _ffi.Store, "risk_scoring": _ffi.Scoring,
         "risk_type_aging": _ffi.TypeAging, "risk_score_result": _ffi.ScoreResult,
         "risk_engine_options": _ffi.EngineOptions, "risk_anchor": _ffi.Anchor,
         "risk_journal_options": _ffi.JournalOptions, "risk_journal_stats": _ffi.JournalStats}
#: Structs with a version field the bindings deliberately do not use.
UNBOUND = {"risk_allocator"}


@unittest.skipUnless(HEADERS.is_dir(), "public headers not beside the bindings")
class TestStructLayout(unittest.TestCase):
    # Bug 1 (heap overflow): _ffi.Store lacked prefetch_users, the field of
    # version 2 of struct risk_store; the shipped stores write all 192 bytes.
    # R-ST-1: the table grows only at the end, its version says how far.

    def test_store_matches_header(self):
        fields = c_struct_fields("risk_store")
        self.assertEqual([f for f, _, _ in fields], [f for f, _ in _ffi.Store._fields_])
        self.assertEqual(fields[-1][0], "prefetch_events")  # version 3
        _, size = c_layout(fields)
        self.assertEqual(ctypes.sizeof(_ffi.Store), size)
        if ctypes.sizeof(ctypes.c_void_p) == 8:
            self.assertEqual(ctypes.sizeof(_ffi.Store), 200)

    def test_every_struct_matches_header(self):
        # The same class of mismatch in any versioned or plain struct: names,
        # order, C types, offsets and size, all read from the header.
        for cname, pytype in BOUND.items():
            with self.subTest(struct=cname):
                fields = c_struct_fields(cname)
                self.assertEqual([f for f, _, _ in fields], [f for f, _ in pytype._fields_])
                offsets, size = c_layout(fields)
                for (field, kind, count), (_, ctype) in zip(fields, pytype._fields_):
                    self.assertEqual(getattr(pytype, field).offset, offsets[field], field)
                    if kind in ("ptr", "fnptr"):
                        self.assertEqual(ctypes.sizeof(ctype), ctypes.sizeof(ctypes.c_void_p))
                        self.assertNotIn(ctype, _C_INTS.values(), field)
                    elif count > 1:
                        self.assertIs(ctype._type_, _C_INTS[kind], field)
                        self.assertEqual(ctype._length_, count, field)
                    else:
                        self.assertIs(ctype, _C_INTS[kind], field)
                self.assertEqual(ctypes.sizeof(pytype), size)

    def test_every_versioned_struct_is_checked(self):
        text = "".join(p.read_text() for p in sorted(HEADERS.rglob("*.h")))
        versioned = {m.group(1) for m in
                     re.finditer(r"struct\s+(\w+)\s*\{\s*uint32_t\s+version;", text)}
        self.assertEqual(versioned - set(BOUND) - UNBOUND, set())

    def test_shipped_stores_write_inside_the_struct(self):
        class Guarded(ctypes.Structure):
            _fields_ = [("store", _ffi.Store), ("canary", ctypes.c_uint64)]

        canary = 0xDEADBEEFDEADBEEF
        g = Guarded()
        g.canary = canary
        _ffi.lib.risk_memory_store_new(ctypes.byref(g.store))
        try:
            self.assertEqual(g.canary, canary, "risk_memory_store_new overflowed Store")
            self.assertLessEqual(g.store.version, _ffi.STORE_STRUCT_VERSION)
        finally:
            g.store.close(g.store.ctx)
        with tempfile.TemporaryDirectory() as d:
            g = Guarded()
            g.canary = canary
            jo = _ffi.JournalOptions(1, 2, 0, 0)
            _ffi.lib.risk_journal_open(ctypes.byref(g.store), os.path.join(d, "j").encode(),
                                       ctypes.byref(jo), None)
            try:
                self.assertEqual(g.canary, canary, "risk_journal_open overflowed Store")
            finally:
                g.store.close(g.store.ctx)


class TestHostStoreErrorCodes(unittest.TestCase):
    # Bug 2: a host store raising RiskError("text") (code 0) returned RISK_OK
    # to C, so a failed write committed. R-CC-2: it must roll back.

    def test_plain_riskerror_is_a_store_error(self):
        for raised in (RiskError("disk full"), RiskError(5, "positive code")):
            class Failing(DictStore):
                def put_event(self, txn: Any, event: Any) -> None:
                    raise raised

            store = Failing()
            with self.subTest(code=raised.code), Engine(store=store, clock=T0) as e:
                with self.assertRaises(StoreError) as cm:
                    e.ingest("alice", "d1", "leakedCredentials", "high", T0)
                self.assertIs(cm.exception.__cause__, raised)
                self.assertIn("disk full" if raised.code == 0 else "positive code",
                              cm.exception.message)
                self.assertEqual(store.data["users"], {})
                self.assertEqual(store.data["events"], {})


class SlowView(FullDictStore):
    """view_user signals that a sign-in is inside C, then waits."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def view_user(self, id: str) -> Optional[bytes]:
        self.entered.set()
        self.release.wait(10)
        return super().view_user(id)


class TestCloseWaitsForCalls(unittest.TestCase):
    # Bug 3: close() freed the C engine under a call in flight on another
    # thread (use-after-free). R-CC-1: an engine is used from many threads.

    def test_close_waits_for_a_call_in_flight(self):
        store = SlowView()
        e = Engine(store=store, clock=T0)
        e.upsert_user("alice")
        order: List[str] = []
        results: List[Any] = []

        def sign_in() -> None:
            results.append(e.sign_in("alice"))
            order.append("sign_in returned")

        def close() -> None:
            e.close()
            order.append("close returned")

        t = threading.Thread(target=sign_in)
        t.start()
        self.assertTrue(store.entered.wait(10))
        c = threading.Thread(target=close)
        c.start()
        c.join(0.3)
        self.assertTrue(c.is_alive(), "close() returned while a call was in flight")
        self.assertTrue(e.closed)
        with self.assertRaisesRegex(InvalidArgument, "engine: closed"):
            e.user("alice")  # new calls are refused while close() waits
        store.release.set()
        t.join(10)
        c.join(10)
        self.assertEqual(order, ["sign_in returned", "close returned"])
        self.assertTrue(results[0].allowed)
        self.assertTrue(store.closed)
        with self.assertRaisesRegex(InvalidArgument, "engine: closed"):
            e.sign_in("alice")

    def test_close_from_inside_a_hook_raises(self):
        errors: List[BaseException] = []

        def hook(before: Any, after: Any) -> None:
            try:
                e.close()
            except RuntimeError as exc:
                errors.append(exc)

        e = Engine.memory(clock=T0, on_user_change=hook)
        e.ingest("alice", "d1", "leakedCredentials", "high", T0)
        self.assertEqual(len(errors), 1)
        self.assertFalse(e.closed)
        e.close()


class TestOpenFailureClosesJournal(unittest.TestCase):
    # Bug 4: a failed Engine.open() left the journal open with its writer
    # lock, so every later open was Busy. R-CC-3.

    def test_failed_open_releases_the_journal(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "risk.journal")
            for bad in ({"actor": 123}, {"receipt_key": 5}, {"clok": None},
                        {"temp_password_length": 3}):
                with self.subTest(bad=bad), self.assertRaises((TypeError, RiskError)):
                    Engine.open(path, **bad)
            with Engine.open(path) as e:  # not Busy
                e.upsert_user("alice")


class TestPolicyListsRefuseStr(unittest.TestCase):
    # Bug 5: include/exclude given as a str was split into one-letter ids.
    # SPEC §2 (include: all users, or a list of user ids), R-PO-1.

    def test_str_refused(self):
        with self.assertRaises(InvalidArgument):
            Policy("p", "high", "block", include="alice")
        with self.assertRaises(InvalidArgument):
            Policy("p", "high", "block", exclude=b"bob")
        with Engine.memory(clock=T0) as e:
            with self.assertRaises(InvalidArgument):
                e.set_policy("p", "high", "block", include="alice")
            with self.assertRaises(InvalidArgument):
                e.set_policy("p", "high", "block", exclude="bob")
            with self.assertRaises(InvalidArgument):
                e.sign_in_many("alice")
            self.assertEqual(list(e.policies()), [])
            p = e.set_policy("p", "high", "block", include=["alice"], exclude=("bob",))
            self.assertEqual((p.include, p.exclude), (("alice",), ("bob",)))


class Alerts:
    """A hook object that also queries the engine (a reference cycle)."""

    def __init__(self) -> None:
        self.engine: Optional[Engine] = None

    def on_change(self, before: Any, after: Any) -> None:
        assert self.engine is not None
        self.engine.user(after.id)


class EngineStore(DictStore):
    """A host store that refers back to its engine."""
    engine: Optional[Engine] = None


class TestFinalizerWithCycles(unittest.TestCase):
    # Bug 6: weakref.finalize held the hooks, the clock and the host store;
    # one referring back to the engine kept it (and the journal's writer
    # lock, R-CC-3) alive for ever.

    def test_hook_referring_to_engine_is_collected(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "j.journal")

            def session() -> "weakref.ref[Engine]":
                alerts = Alerts()
                e = Engine.open(path, clock=lambda: (e, T0)[1],
                                on_user_change=alerts.on_change,
                                feedback=lambda ev, w: e.user(ev.user_id))
                alerts.engine = e
                e.ingest("alice", "d1", "leakedCredentials", "high", T0)
                return weakref.ref(e)

            ref = session()
            gc.collect()
            self.assertIsNone(ref())
            Engine.open(path).close()  # the writer lock went with it

    def test_store_referring_to_engine_is_collected(self):
        store = EngineStore()
        e = Engine(store=store, clock=T0)
        store.engine = e
        e.upsert_user("alice")
        ref = weakref.ref(e)
        del e, store
        gc.collect()
        self.assertIsNone(ref())

    def test_store_closed_when_collected_without_cycle(self):
        # The weak reference must not cost the plain case its close().
        store = DictStore()
        e = Engine(store=store, clock=T0)
        e.upsert_user("alice")
        del e
        gc.collect()
        self.assertTrue(store.closed)


@unittest.skipUnless(os.path.isdir("/proc/self/fd"), "needs /proc/self/fd")
class TestSQLiteThreadConnections(unittest.TestCase):
    # Bug 7: SQLiteStore kept one or two connections per thread until
    # close(): a thread per request leaked file descriptors without bound.

    def test_connections_of_ended_threads_are_closed(self):
        with tempfile.TemporaryDirectory() as d:
            store = SQLiteStore(os.path.join(d, "s.sqlite"), synchronous="OFF")
            with Engine(store=store, clock=T0) as e:
                e.upsert_user("alice")
                e.sign_in("alice")
                base = len(os.listdir("/proc/self/fd"))
                for _ in range(40):
                    t = threading.Thread(target=lambda: (e.upsert_user("alice"),
                                                         e.sign_in("alice")))
                    t.start()
                    t.join()
                gc.collect()
                self.assertLess(len(os.listdir("/proc/self/fd")) - base, 8)
                self.assertEqual(e.sign_in("alice").decision.value, "allow")


class Interrupting(FullDictStore):
    def __init__(self, exc: BaseException, where: str) -> None:
        super().__init__()
        self.exc, self.where = exc, where

    def put_event(self, txn: Any, event: Any) -> None:
        if self.where == "put_event":
            raise self.exc
        super().put_event(txn, event)

    def view_user(self, id: str) -> Optional[bytes]:
        if self.where == "view_user":
            raise self.exc
        return super().view_user(id)


class TestInterruptsPropagate(unittest.TestCase):
    # Bug 8: KeyboardInterrupt/SystemExit inside a store callback became a
    # StoreError (and was swallowed by code handling RiskError). The callback
    # returns an error code (R-CC-2: the operation rolls back), then the
    # original exception object is re-raised.

    def test_keyboard_interrupt_in_store_callback(self):
        exc = KeyboardInterrupt()
        store = Interrupting(exc, "put_event")
        with Engine(store=store, clock=T0) as e:
            with self.assertRaises(KeyboardInterrupt) as cm:
                e.ingest("alice", "d1", "leakedCredentials", "high", T0)
            self.assertIs(cm.exception, exc)
            self.assertEqual(store.data["users"], {})  # rolled back
            store.where = ""
            e.ingest("alice", "d1", "leakedCredentials", "high", T0)

    def test_system_exit_in_bulk_call(self):
        # The bulk call returns a failure count ≥ 0: still re-raised.
        exc = SystemExit(3)
        store = Interrupting(exc, "")
        with Engine(store=store, clock=T0) as e:
            e.upsert_user("alice")
            store.where = "view_user"
            with self.assertRaises(SystemExit) as cm:
                e.sign_in_many(["alice", "alice"])
            self.assertIs(cm.exception, exc)

    def test_keyboard_interrupt_in_hook(self):
        def hook(before: Any, after: Any) -> None:
            raise KeyboardInterrupt

        with Engine.memory(clock=T0, on_user_change=hook) as e:
            with self.assertRaises(KeyboardInterrupt):
                e.ingest("alice", "d1", "leakedCredentials", "high", T0)
            self.assertEqual(e.user("alice").active_events, 1)  # committed before the hook


class BadClose(DictStore):
    def close(self) -> None:
        raise RuntimeError("flush failed at close")


class TestStoreCloseError(unittest.TestCase):
    # Bug 9: the exception of a store's close() at Engine.close() was
    # swallowed, then attached as __cause__ of an unrelated later error.

    def test_close_raises_and_leaves_nothing_pending(self):
        other = Engine.memory(clock=T0)
        e = Engine(store=BadClose(), clock=T0)
        with self.assertRaisesRegex(RuntimeError, "flush failed at close"):
            e.close()
        self.assertTrue(e.closed)
        e.close()  # idempotent, nothing raised twice
        with self.assertRaises(librisk.NotFound) as cm:
            other.user("nobody")
        self.assertIsNone(cm.exception.__cause__)
        other.close()

    def test_garbage_collected_engine_reports_it(self):
        seen: List[BaseException] = []
        old = sys.unraisablehook
        sys.unraisablehook = lambda u: seen.append(u.exc_value)
        try:
            e = Engine(store=BadClose(), clock=T0)
            del e
            gc.collect()
        finally:
            sys.unraisablehook = old
        self.assertEqual([str(x) for x in seen], ["flush failed at close"])
        with Engine.memory(clock=T0) as other, self.assertRaises(librisk.NotFound) as cm:
            other.user("nobody")
        self.assertIsNone(cm.exception.__cause__)


class TestLibraryChecks(unittest.TestCase):
    def test_other_major_refused(self):
        # Bug 10: a library of a newer (incompatible) major was accepted.
        major = _ffi.PACKAGE_MAJOR
        _ffi.check_version(major * 10000 + 105)
        with self.assertRaisesRegex(ImportError, "newer"):
            _ffi.check_version((major + 1) * 10000)
        if major:
            with self.assertRaisesRegex(ImportError, "older"):
                _ffi.check_version((major - 1) * 10000 + 9999)

    def test_missing_function_is_unsupported(self):
        # Bug 11: a function missing from the library raised base RiskError.
        with self.assertRaises(Unsupported) as cm:
            _ffi._Missing("risk_engine_what_if")()
        self.assertEqual(cm.exception.code, -11)
        self.assertIn("risk_engine_what_if", str(cm.exception))


class TestBulkItemMessages(unittest.TestCase):
    # Bug 12: per-item errors of the bulk calls carried only strerror(),
    # not the detailed message sign_in()/dismiss() give. R-DI-4, R-PO-9.

    def test_invalid_id_message(self):
        bad = "bad\x01id"
        with Engine.memory(clock=T0) as e:
            e.upsert_user("a")
            with self.assertRaises(InvalidArgument) as cm:
                e.sign_in_many(["a", bad])
            self.assertIn("control character 0x01 at byte 3", cm.exception.message)
            self.assertIn(repr(bad), cm.exception.message)
            res = e.dismiss(["a", bad])
            self.assertTrue(res[0].ok)
            self.assertIsInstance(res[1].error, InvalidArgument)
            self.assertIn("control character 0x01 at byte 3", res[1].error.message)


class NegativeSeq(DictStore):
    def reserve_seq(self, txn: Any) -> int:
        return -1


class TestUnsignedArguments(unittest.TestCase):
    # Review: negative ints passed into unsigned C fields wrapped silently.

    def test_negative_refused(self):
        with self.assertRaisesRegex(InvalidArgument, "max_conflict_retries"):
            Engine.memory(max_conflict_retries=-1)
        with self.assertRaisesRegex(InvalidArgument, "temp_password_length"):
            Engine.memory(temp_password_length=-16)
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(InvalidArgument, "sync_interval_ms"):
                Engine.open(os.path.join(d, "j"), "normal", sync_interval_ms=-1)
            Engine.open(os.path.join(d, "j")).close()
        with Engine.memory(clock=T0) as e:
            with self.assertRaisesRegex(InvalidArgument, "since"):
                e.history(since=-1)
            with self.assertRaisesRegex(InvalidArgument, "since"):
                e.history("alice", since=-1)

    def test_negative_reserved_seq_refused(self):
        store = NegativeSeq()
        with Engine(store=store, clock=T0) as e:
            with self.assertRaises(RiskError) as cm:
                e.upsert_user("alice")
            self.assertIn("reserve_seq", cm.exception.message)
            self.assertEqual(store.data["users"], {})  # R-CC-2


class TestNulRefused(unittest.TestCase):
    # Session 7 review: a string with a NUL was cut there on its way to C,
    # so "carol\0evil" named user "carol". SPEC §2, R-IV-1: refused,
    # nothing changes.

    def test_nul_in_any_string(self):
        with Engine.memory(clock=T0, actor="admin") as e:
            e.upsert_user("carol")
            e.ingest("carol", "ev", "leakedCredentials", "high", T0)
            before = (list(e.history()), e.user("carol"), e.event("ev"))
            for call in (lambda: e.upsert_user("carol\0evil"),
                         lambda: e.resolve("ev\0other"),
                         lambda: e.resolve("ev", note="n\0hidden"),
                         lambda: e.dismiss("carol", actor="adm\0in"),
                         lambda: e.sign_in("carol\0"),
                         lambda: e.user(b"carol\0x"),  # type: ignore[arg-type]
                         lambda: e.dismiss(["carol\0"])):
                with self.assertRaisesRegex(InvalidArgument, "0x00"):
                    call()
            self.assertEqual((list(e.history()), e.user("carol"), e.event("ev")), before)
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(InvalidArgument):
                Engine.open(os.path.join(d, "j\0k"))
            self.assertEqual(os.listdir(d), [])


class FailingFor(SQLiteStore):
    fail_for: Optional[str] = None

    def put_user(self, txn: Any, user: Any) -> None:
        if user.id == self.fail_for:
            raise ValueError(f"disk quota for {user.id}")
        super().put_user(txn, user)

    def view_user(self, id: str) -> Optional[bytes]:
        if id == self.fail_for:
            raise ValueError(f"cannot read {id}")
        return super().view_user(id)


class TestBulkHostStoreErrors(unittest.TestCase):
    # Session 7 review: over a host store, the bulk calls' failed items
    # said only "store failure", without the store's exception chained
    # (README: "StoreError chained to your exception").

    def test_items_keep_message_and_cause(self):
        with tempfile.TemporaryDirectory() as d:
            store = FailingFor(os.path.join(d, "s.sqlite"), synchronous="OFF")
            with Engine(store=store, clock=T0) as e:
                for u in ("a", "b"):
                    e.ingest(u, u + "1", "leakedCredentials", "high", T0)
                store.fail_for = "b"
                res = e.dismiss(["a", "b"])
                self.assertEqual((res[0].ok, res[0].closed), (True, 1))
                self.assertIsInstance(res[1].error, StoreError)
                self.assertIn("disk quota for b", res[1].error.message)
                self.assertIsInstance(res[1].error.__cause__, ValueError)
                self.assertEqual(e.user("b").active_events, 1)  # R-CC-2: rolled back
                with self.assertRaises(StoreError) as cm:
                    e.sign_in_many(["a", "b"])
                self.assertIn("cannot read b", cm.exception.message)
                self.assertIsInstance(cm.exception.__cause__, ValueError)
                verdicts = cm.exception.verdicts  # type: ignore[attr-defined]
                self.assertEqual([v.decision.value for v in verdicts], ["allow", "block"])
                with self.assertRaises(InvalidArgument):  # actor checked before any item
                    e.dismiss(["a"], actor="bad\x01")
                self.assertEqual(e.user("a").active_events, 0)


class TestSQLiteStoreOpenErrors(unittest.TestCase):
    # Session 7 review: ":memory:" gave every connection its own empty
    # database; an unopenable path raised a raw sqlite3 error (and
    # `python3 -m librisk import-graph --sqlite` printed a traceback).

    def test_memory_and_uri_refused(self):
        for path in (":memory:", "", "file:x?mode=memory"):
            with self.assertRaises(ValueError):
                SQLiteStore(path)

    def test_unopenable_path_is_a_store_error(self):
        with self.assertRaises(StoreError) as cm:
            SQLiteStore("/nonexistent-dir/x.sqlite")
        self.assertIn("/nonexistent-dir/x.sqlite", cm.exception.message)

    def test_import_graph_reports_it(self):
        import contextlib
        import io
        from librisk.__main__ import main
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "g.json")
            Path(src).write_text('{"value": []}')
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc = main(["import-graph", src, "--sqlite", "/nonexistent-dir/x.sqlite"])
            self.assertEqual(rc, 1)
            self.assertIn("librisk import-graph:", err.getvalue())
            self.assertNotIn("Traceback", err.getvalue())


class TestEngineArgumentsChecked(unittest.TestCase):
    # Session 7 review: a wrong clock was replaced by the real time at every
    # call; a wrong default actor failed every later call; True and 3.0
    # passed for levels; errors named the enum, not the argument.

    def test_clock_refused_at_construction(self):
        from datetime import datetime
        for clock in (lambda: datetime(2030, 5, 5), 5, "2030-05-05", lambda: 1700000000):
            with self.assertRaisesRegex(InvalidArgument, "clock"):
                Engine.memory(clock=clock)
        with self.assertRaisesRegex(InvalidArgument, "clock"):
            Engine.memory(clock=datetime(2030, 5, 5))
        with Engine.memory(clock=lambda: T0) as e:
            self.assertEqual(e.now(), T0)

    def test_default_actor_is_an_id(self):
        for actor in ("", None, "a" * 257, "a\nb"):
            with self.assertRaisesRegex(InvalidArgument, "^actor|actor:"):
                Engine.memory(actor=actor)  # type: ignore[arg-type]

    def test_levels_are_levels(self):
        with Engine.memory(clock=T0) as e:
            for bad in (True, 3.0, None):
                with self.assertRaisesRegex(InvalidArgument, "^level|level:"):
                    e.ingest("u", "e1", "leakedCredentials", bad, T0)  # type: ignore[arg-type]
                with self.assertRaisesRegex(InvalidArgument, "min_level"):
                    list(e.users(bad))  # type: ignore[arg-type]
            self.assertEqual(list(e.history()), [])

    def test_errors_name_the_argument(self):
        with Engine.memory(clock=T0) as e:
            with self.assertRaisesRegex(InvalidArgument, "threshold"):
                e.set_policy("p", "x", "block")
            with self.assertRaisesRegex(InvalidArgument, "mode"):
                e.set_policy("p", "high", "block", mode="sometimes")
            with self.assertRaisesRegex(InvalidArgument, "timing"):
                e.ingest("u", "e1", "leakedCredentials", "high", T0, timing="soon")
            with self.assertRaisesRegex(InvalidArgument, "min_level"):
                list(e.users("x"))

    def test_enum_members_are_their_spelling(self):
        from librisk import RiskState
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "e1", "leakedCredentials", "high", T0)
            u = e.user("u")
            self.assertEqual(u.risk_state, "at_risk")
            self.assertIs(u.risk_state, RiskState.AT_RISK)
            self.assertEqual(str(u.risk_state), "at_risk")
            self.assertEqual(f"{u.risk_state}", "at_risk")


class TestFarFutureTimes(unittest.TestCase):
    # Session 7 review: a time the library allows (< 2^53 ms) past year 9999
    # raised OverflowError from every read of its record.

    def test_readable(self):
        from datetime import datetime, timezone
        far = (1 << 53) - 1
        ev = ctypes.c_void_p()
        _ffi.lib.risk_event_new(ctypes.byref(ev), b"far", b"u", b"leakedCredentials", 3, far)
        with Engine.memory(clock=T0) as e:
            _ffi.lib.risk_engine_ingest(e._h, b"admin", ev, 0)
            _ffi.lib.risk_event_free(ev)
            self.assertEqual(e.event("far").detected_at,
                             datetime.max.replace(tzinfo=timezone.utc))
            self.assertEqual([u.id for u in e.users()], ["u"])
            e.explain("u")


class TestSync(unittest.TestCase):
    # risk_engine_sync through Python: a journal syncs in any mode; the
    # memory store has no such step.
    def test_sync(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "j")
            with Engine.open(p, "off", clock=T0) as e:
                e.ingest("u", "e1", "leakedCredentials", "high", T0)
                e.sync()
            with Engine.open(p, clock=T0) as e:
                self.assertEqual(e.user("u").active_events, 1)
        with Engine.memory(clock=T0) as e:
            with self.assertRaises(Unsupported):
                e.sync()


if __name__ == "__main__":
    unittest.main()


class TestSession8Review(unittest.TestCase):
    """Found by the seed-scenario review of 2026-12-07."""

    def test_scoring_out_of_range_is_refused_not_wrapped(self):
        # R-SC-7, R-IV-1: a weight of -1 became 4294967295, a threshold of
        # 2**64 + 5 became 5; both made the engine.
        bad = [(Scoring(weights=(-1, 3, 9)), "scoring.weight_low"),
               (Scoring(weights=(1, 2**32, 9)), "scoring.weight_medium"),
               (Scoring(thresholds=(1, 3, 2**64 + 5)), "scoring.threshold_high"),
               (Scoring(thresholds=(-1, 3, 9)), "scoring.threshold_low"),
               (Scoring(weights=(1, 2)), "scoring.weights"),
               (Scoring(thresholds=7), "scoring.thresholds")]  # type: ignore[arg-type]
        for sc, name in bad:
            with self.subTest(name=name), self.assertRaisesRegex(InvalidArgument, name):
                Engine.memory(clock=T0, scoring=sc)
        with Engine.memory(clock=T0, scoring=Scoring(weights=(2**32 - 1, 1, 1),
                                                     thresholds=(1, 2, 2**64 - 1))) as e:
            e.ingest("u", "e1", "leakedCredentials", "low", T0)
            self.assertEqual(e.user("u").score, 2**32 - 1)

    def _raising_hook_engine(self) -> Engine:
        def hook(before: Any, after: Any) -> None:
            raise RuntimeError("revoke sessions failed")
        return Engine.memory(actor="admin", clock=T0, on_user_change=hook)

    def test_hook_exception_reported_by_default_hook(self):
        # CPython's own unraisablehook refused the binding's argument with a
        # TypeError, so the host's exception was never shown.
        import contextlib
        import io
        old = sys.unraisablehook
        sys.unraisablehook = sys.__unraisablehook__
        err = io.StringIO()
        try:
            with self._raising_hook_engine() as e, contextlib.redirect_stderr(err):
                e.ingest("u", "e1", "leakedCredentials", "high", T0)
                self.assertEqual(e.user("u").risk_level, Level.HIGH)  # committed
        finally:
            sys.unraisablehook = old
        text = err.getvalue()
        self.assertIn("Exception ignored in librisk on_user_change hook", text)
        self.assertIn("RuntimeError: revoke sessions failed", text)
        self.assertNotIn("TypeError", text)

    def test_hook_exception_goes_to_the_hosts_unraisablehook(self):
        seen: List[Any] = []
        old = sys.unraisablehook
        sys.unraisablehook = seen.append
        try:
            with self._raising_hook_engine() as e:
                e.ingest("u", "e1", "leakedCredentials", "high", T0)
        finally:
            sys.unraisablehook = old
        self.assertEqual(len(seen), 1)
        self.assertIsInstance(seen[0].exc_value, RuntimeError)
        self.assertIs(seen[0].exc_type, RuntimeError)
        self.assertIn("on_user_change", seen[0].err_msg)
