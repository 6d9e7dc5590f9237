"""Every RISK_E… code maps to its exception class (R-IV-1), and the real
failures reach Python as those classes with the library's message."""
from __future__ import annotations

import os
import re
import tempfile
import unittest
from pathlib import Path

import librisk
from librisk import Engine, errors
from support import T0, DictStore

HEADER = Path(__file__).resolve().parents[3] / "include" / "librisk.h"

EXPECTED = {
    "RISK_EINVAL": (librisk.InvalidArgument, ValueError),
    "RISK_ENOMEM": (librisk.OutOfMemory, MemoryError),
    "RISK_ENOTFOUND": (librisk.NotFound, LookupError),
    "RISK_EEXISTS": (librisk.AlreadyExists, None),
    "RISK_ETRANSITION": (librisk.TransitionError, None),
    "RISK_ENOMFA": (librisk.MfaNotRegistered, None),
    "RISK_EDELETED": (librisk.UserDeleted, None),
    "RISK_EBUSY": (librisk.Busy, None),
    "RISK_ECORRUPT": (librisk.Corrupt, None),
    "RISK_EIO": (librisk.StoreIOError, OSError),
    "RISK_EUNSUPPORTED": (librisk.Unsupported, None),
    "RISK_ECONFLICT": (librisk.Conflict, None),
    "RISK_ERANGE": (librisk.BufferTooSmall, None),
    "RISK_EREADONLY": (librisk.ReadOnly, None),
    "RISK_ESTORE": (librisk.StoreError, None),
    "RISK_EVERIFY": (librisk.VerificationError, None),
}


class TestMapping(unittest.TestCase):
    def test_every_header_code_has_a_class(self):
        # R-IV-1: one class per code of librisk.h, none missing, none extra.
        codes = dict((m[0], int(m[1])) for m in
                     re.findall(r"(RISK_E[A-Z]+) = (-\d+)", HEADER.read_text()))
        self.assertEqual(set(codes), set(EXPECTED))
        for name, code in codes.items():
            cls, std = EXPECTED[name]
            exc = errors.error_for_code(code, "msg")
            self.assertIs(type(exc), cls, name)
            self.assertIsInstance(exc, librisk.RiskError)
            if std is not None:
                self.assertIsInstance(exc, std)
            self.assertEqual((exc.code, exc.message, cls.code, cls.name), (code, "msg", code, name))
            self.assertEqual(str(exc), f"{name}: msg")
            self.assertEqual(librisk._ffi.lib.risk_error_name(code).decode(), name)

    def test_unknown_code(self):
        exc = errors.error_for_code(-99, "x")
        self.assertIs(type(exc), librisk.RiskError)

    def test_raisable_from_python(self):
        # Host stores raise these with a message only.
        e = librisk.Conflict("user changed")
        self.assertEqual((e.code, e.message), (-12, "user changed"))


class BrokenStore(DictStore):
    """Returns garbage for users, refuses writes, or conflicts, on demand."""
    mode = "ok"

    def get_user(self, txn, id):
        if self.mode == "garbage":
            return b"\x01garbage"
        return super().get_user(txn, id)

    def put_user(self, txn, user):
        if self.mode == "conflict":
            raise librisk.Conflict("always")
        if self.mode == "raise":
            raise RuntimeError("disk on fire")
        return super().put_user(txn, user)


class TestRaisedByTheLibrary(unittest.TestCase):
    def setUp(self):
        self.store = BrokenStore()
        self.e = Engine(store=self.store, clock=T0, actor="admin")
        self.e.ingest("u", "ev", "leakedCredentials", "high", T0)

    def tearDown(self):
        self.e.close()

    def test_invalid_argument_names_the_argument(self):
        with self.assertRaises(librisk.InvalidArgument) as cm:
            self.e.ingest("bad\x01id", "ev2", "leakedCredentials", "high", T0)
        self.assertIn("id", cm.exception.message)
        with self.assertRaises(librisk.InvalidArgument):
            self.e.ingest("u", "ev2", "bad type!", "high", T0)
        with self.assertRaises(librisk.InvalidArgument):  # level none is not an event level
            self.e.ingest("u", "ev2", "leakedCredentials", "none", T0)

    def test_not_found_exists_transition(self):
        with self.assertRaises(librisk.NotFound):
            self.e.event("nope")
        with self.assertRaises(librisk.AlreadyExists):  # R-OP-1
            self.e.ingest("u", "ev", "leakedCredentials", "low", T0)
        self.e.resolve("ev")
        with self.assertRaises(librisk.TransitionError):  # R-EV-5
            self.e.resolve("ev")

    def test_mfa_and_deleted(self):
        with self.assertRaises(librisk.MfaNotRegistered):  # R-PW-2
            self.e.require_password_reset("u")
        self.e.upsert_user("u", deleted=True)
        with self.assertRaises(librisk.UserDeleted):  # R-PW-3
            self.e.generate_temporary_password("u")

    def test_corrupt(self):
        # R-IV-2: bytes from a store are never trusted.
        self.store.mode = "garbage"
        with self.assertRaises(librisk.Corrupt):
            self.e.dismiss("u")

    def test_unsupported(self):
        # R-ST-4: no list_users / read_history callbacks.
        with self.assertRaises(librisk.Unsupported):
            list(self.e.users())
        with self.assertRaises(librisk.Unsupported):
            list(self.e.history())

    def test_conflict_after_retries(self):
        # R-ST-6: the engine retries, then returns the last conflict.
        self.store.mode = "conflict"
        with self.assertRaises(librisk.Conflict) as cm:
            self.e.dismiss("u")
        self.assertIsInstance(cm.exception.__cause__, librisk.Conflict)

    def test_store_error_chains_the_python_exception(self):
        # R-CC-2: an exception in a callback → StoreError, chained.
        self.store.mode = "raise"
        with self.assertRaises(librisk.StoreError) as cm:
            self.e.dismiss("u")
        self.assertIsInstance(cm.exception.__cause__, RuntimeError)
        self.assertIn("disk on fire", cm.exception.message)

    def test_busy_readonly_io(self):
        d = tempfile.mkdtemp()
        path = os.path.join(d, "j")
        with Engine.open(path, durability="off") as e:
            e.ingest("u", "ev", "leakedCredentials", "high", T0)
            with self.assertRaises(librisk.Busy):  # R-CC-3
                Engine.open(path)
        with Engine.open(path, read_only=True) as ro:
            with self.assertRaises(librisk.ReadOnly):
                ro.dismiss("u")
        with self.assertRaises(OSError):  # StoreIOError is an OSError
            Engine.open(d)  # a directory, not a journal file

    def test_buffer_too_small_oom_verify_are_reachable_classes(self):
        # Not reachable through this API without fault injection: the mapping
        # (above) is what Python code relies on.
        for cls in (librisk.BufferTooSmall, librisk.OutOfMemory, librisk.VerificationError):
            with self.assertRaises(librisk.RiskError):
                raise cls("x")


if __name__ == "__main__":
    unittest.main()
