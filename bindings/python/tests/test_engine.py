"""The seed scenarios (SPEC §6) and the Pythonic surface, through Python."""
from __future__ import annotations

import unittest
from datetime import datetime, timedelta, timezone

import librisk
from librisk import (CloseReason, Control, Decision, Engine, HistoryAction, Level,
                     Policy, PolicyMode, Reason, RiskDetail, RiskState, Scoring)
from support import DAY, T0


def engine(**kw):
    kw.setdefault("clock", T0 + DAY)
    kw.setdefault("actor", "admin")
    return Engine.memory(**kw)


class TestSurface(unittest.TestCase):
    def test_package_docstring_example_runs(self):
        # help(librisk) shows it: it must run as written and show what it prints
        import doctest
        res = doctest.testmod(librisk, optionflags=doctest.ELLIPSIS)
        self.assertEqual((res.failed, res.attempted > 0), (0, True))

    def test_version(self):
        # The package reports the loaded library's release.
        self.assertRegex(librisk.version(), r"^\d+\.\d+\.\d+")
        self.assertEqual(librisk.version_number() // 10000, int(librisk.version().split(".")[0]))

    def test_enums_follow_the_library(self):
        # R-EV-6 names; values are the SPEC spellings, members UPPER_SNAKE.
        self.assertEqual(RiskState.AT_RISK.value, "at_risk")
        self.assertEqual(RiskDetail.ADMIN_DISMISSED_ALL_RISK.graph,
                         "adminDismissedAllRiskForUser")
        self.assertTrue(Level.NONE < Level.LOW < Level.MEDIUM < Level.HIGH)
        self.assertIs(Level.parse("high"), Level.HIGH)
        self.assertIs(PolicyMode.parse("report_only"), PolicyMode.REPORT_ONLY)
        with self.assertRaises(librisk.InvalidArgument):
            Control.parse("allow")

    def test_library_lookup_copy_next_to_the_package(self):
        # Lookup order: without LIBRISK_LIBRARY, a copy beside the package wins.
        import os
        import shutil
        import subprocess
        import sys
        import tempfile
        src = os.environ.get("LIBRISK_LIBRARY")
        if not src:
            self.skipTest("LIBRISK_LIBRARY not set")
        pkg = os.path.dirname(librisk.__file__)
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(pkg, os.path.join(d, "librisk"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copy(src, os.path.join(d, "librisk", "librisk.so.0"))
            env = {k: v for k, v in os.environ.items() if k != "LIBRISK_LIBRARY"}
            env["PYTHONPATH"] = d
            # cwd d: `python -c` puts the working directory first on
            # sys.path, where a source tree's librisk/ would win
            out = subprocess.run([sys.executable, "-c", "import librisk; "
                                  "print(librisk._ffi.lib.dll._name, librisk.version())"],
                                 env=env, capture_output=True, text=True, timeout=60, cwd=d)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertTrue(out.stdout.startswith(os.path.join(d, "librisk", "librisk.so.0")))
            env["LIBRISK_LIBRARY"] = os.path.join(d, "nothing-here.so")
            out = subprocess.run([sys.executable, "-c", "import librisk"], env=env,
                                 capture_output=True, text=True, timeout=60, cwd=d)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("LIBRISK_LIBRARY", out.stderr)

    def test_naive_datetime_refused(self):
        # R-IV-1: times must be aware; nothing changes.
        with engine() as e:
            with self.assertRaises(ValueError):
                e.ingest("u", "ev", "leakedCredentials", "high", datetime(2026, 1, 1))
            with self.assertRaises(librisk.NotFound):
                e.user("u")

    def test_closed_engine(self):
        e = engine()
        e.close()
        e.close()  # idempotent
        with self.assertRaises(librisk.InvalidArgument):
            e.user("u")

    def test_context_manager_and_finalizer(self):
        import gc
        import weakref
        e = engine()
        fin = e._finalizer
        ref = weakref.ref(e)
        del e
        gc.collect()
        self.assertIsNone(ref())
        self.assertFalse(fin.alive)  # weakref.finalize freed the C engine

    def test_records_are_frozen(self):
        with engine() as e:
            e.ingest("u", "ev", "leakedCredentials", Level.HIGH, T0, ip="10.0.0.1",
                     location="Paris, Île-de-France, FR", source="test")
            ev = e.event("ev")
            with self.assertRaises(Exception):
                ev.level = Level.LOW  # type: ignore[misc]
            self.assertEqual(ev.location, "Paris, Île-de-France, FR")
            self.assertEqual(ev.detected_at, T0)
            self.assertEqual(ev.detected_at.tzinfo, timezone.utc)


class TestSeed(unittest.TestCase):
    """The four ways to close risk of the seed, SPEC §6."""

    def setUp(self):
        self.e = engine()
        self.e.upsert_user("alice", mfa_registered=True, mfa_registered_at=T0 - 30 * DAY)
        self.e.upsert_user("bob")  # not MFA-registered
        for u in ("alice", "bob"):
            self.e.ingest(u, f"{u}-1", "leakedCredentials", "high", T0)
            self.e.ingest(u, f"{u}-2", "unfamiliarFeatures", "low", T0 + timedelta(hours=1))
        self.e.set_policy(Policy("pw", Level.MEDIUM, Control.REQUIRE_PASSWORD_CHANGE))

    def tearDown(self):
        self.e.close()

    def test_policy_password_change(self):
        # R-PO-1, R-PO-2: MFA user must change the password; others blocked.
        v = self.e.sign_in("alice")
        self.assertEqual((v.decision, v.reason, v.policy),
                         (Decision.REQUIRE_PASSWORD_CHANGE, Reason.RISK_LEVEL, "pw"))
        v = self.e.sign_in("bob")
        self.assertEqual((v.decision, v.reason), (Decision.BLOCK, Reason.NOT_MFA_REGISTERED))
        # R-PO-10: the secure change remediates everything.
        self.e.password_changed("alice", secure=True, actor="alice")
        u = self.e.user("alice")
        self.assertEqual((u.risk_level, u.risk_state, u.risk_detail),
                         (Level.NONE, RiskState.REMEDIATED,
                          RiskDetail.USER_PERFORMED_SECURED_PASSWORD_CHANGE))
        self.assertTrue(all(ev.close_reason is CloseReason.REMEDIATED
                            for ev in self.e.events("alice")))
        self.assertTrue(self.e.sign_in("alice").allowed)
        # R-EV-4: a remediated event can never be reactivated.
        with self.assertRaises(librisk.TransitionError):
            self.e.reactivate("alice-1")

    def test_sign_in_many(self):
        # R-PO-1, R-PO-8: as one sign-in each, in order, unknown users too.
        ids = ["alice", "bob", "nobody", "alice"]
        got = self.e.sign_in_many(ids)
        self.assertEqual(got, [self.e.sign_in(u) for u in ids])
        self.assertEqual(got[1].decision, Decision.BLOCK)
        self.assertEqual(self.e.sign_in_many([]), [])
        self.assertEqual(self.e.sign_in_many(iter(["bob"]))[0].user_id, "bob")
        # SPEC §7, R-PO-9: a bad id fails alone; the error carries every
        # verdict, the failed one block.
        with self.assertRaises(librisk.InvalidArgument) as cm:
            self.e.sign_in_many(["alice", "x" * 300])
        vs = cm.exception.verdicts
        self.assertEqual(vs[0], self.e.sign_in("alice"))
        self.assertEqual((vs[1].decision, vs[1].reason), (Decision.BLOCK, Reason.STORE_ERROR))

    def test_ingest_many(self):
        # R-OP-1, R-OP-2, R-OP-7, R-DI-4's "each atomic on its own" for
        # detections: every item as one ingest each, its result in order.
        from librisk import Event, IngestResult
        at = T0 + timedelta(hours=2)
        evs = [Event("carol-1", "carol", "leakedCredentials", Level.HIGH, at, ip="192.0.2.7"),
               Event("alice-1", "alice", "leakedCredentials", "high", T0),  # the same: OK
               Event("alice-1", "alice", "anonymizedIPAddress", "low", T0),  # R-OP-2
               Event("librisk:x", "alice", "t", Level.LOW, at),              # reserved
               Event("bad", "x" * 300, "t", Level.LOW, at),                  # SPEC §7
               Event("bob-3", "bob", "anonymizedIPAddress", Level.MEDIUM, at)]
        before = len(list(self.e.history()))
        res = self.e.ingest_many(iter(evs))
        self.assertEqual([r.event_id for r in res], [e.id for e in evs])
        self.assertEqual([r.ok for r in res], [True, True, False, False, False, True])
        self.assertIsInstance(res[2].error, librisk.AlreadyExists)
        self.assertIsInstance(res[3].error, librisk.InvalidArgument)
        self.assertIn("reserved", res[3].error.message)
        self.assertIsInstance(res[4].error, librisk.InvalidArgument)
        self.assertIn("'bad'", res[4].error.message)
        self.assertEqual(res[0], IngestResult("carol-1"))
        self.assertEqual(self.e.event("carol-1").ip, "192.0.2.7")
        self.assertEqual(self.e.user("carol").risk_level, Level.HIGH)   # R-OP-3
        self.assertEqual(self.e.user("bob").active_events, 3)
        self.assertEqual(len(list(self.e.history())) - before, 2)       # nothing for the rest
        # R-OP-7: update=True updates an active event that changed
        res = self.e.ingest_many([Event("bob-3", "bob", "anonymizedIPAddress", Level.HIGH, at)],
                                 update=True, actor="siem")
        self.assertTrue(res[0].ok)
        self.assertEqual(self.e.event("bob-3").level, Level.HIGH)
        self.assertEqual(list(self.e.history("bob"))[-1].actor, "siem")
        self.assertEqual(self.e.ingest_many([]), [])
        with self.assertRaises(librisk.InvalidArgument):
            self.e.ingest_many([Event("bob-4", "bob", "t", Level.LOW, at), ("bob-5", "bob")])
        self.assertEqual(self.e.user("bob").active_events, 3)  # nothing tried
        res = self.e.ingest_many([Event("bob-6", "bob", "t", "bogus", at),
                                  Event(7, "bob", "t", Level.LOW, at)])  # type: ignore
        self.assertEqual([type(r.error) for r in res], [librisk.InvalidArgument] * 2)
        with self.assertRaises(librisk.InvalidArgument):
            self.e.ingest_many(evs[:1], actor="")

    def test_ingest_many_host_store(self):
        # The same through a host store (one call each inside), SQLite's.
        import tempfile
        from librisk import Event
        with tempfile.TemporaryDirectory() as d:
            store = librisk.SQLiteStore(f"{d}/r.sqlite")
            with Engine(store, clock=T0 + DAY, actor="admin") as e:
                evs = [Event("d1", "dave", "leakedCredentials", Level.HIGH, T0),
                       Event("librisk:y", "dave", "t", Level.LOW, T0),
                       Event("d1", "dave", "other", Level.LOW, T0)]
                res = e.ingest_many(evs)
                self.assertEqual([r.ok for r in res], [True, False, False])
                self.assertIsInstance(res[1].error, librisk.InvalidArgument)
                self.assertIsInstance(res[2].error, librisk.AlreadyExists)
                self.assertEqual(e.user("dave").risk_level, Level.HIGH)

    def test_insecure_change_closes_nothing(self):
        # R-PO-10: without MFA proof nothing closes.
        self.e.password_changed("bob", secure=False, actor="bob")
        self.assertEqual(self.e.user("bob").active_events, 2)

    def test_manual_reset(self):
        # R-PW-1: temporary password closes all as remediated, forces a change.
        pw = self.e.generate_temporary_password("bob")
        self.assertGreaterEqual(len(pw), 16)
        u = self.e.user("bob")
        self.assertTrue(u.must_change_password)
        self.assertEqual(u.risk_detail, RiskDetail.ADMIN_GENERATED_TEMPORARY_PASSWORD)
        v = self.e.sign_in("bob")  # R-PO-7
        self.assertEqual((v.decision, v.reason),
                         (Decision.REQUIRE_PASSWORD_CHANGE, Reason.TEMPORARY_PASSWORD))
        # R-PW-2: require reset only for MFA users.
        with self.assertRaises(librisk.MfaNotRegistered):
            self.e.require_password_reset("bob")
        self.e.require_password_reset("alice")
        self.assertTrue(self.e.user("alice").reset_required)
        self.assertEqual(self.e.user("alice").active_events, 2)
        self.e.password_changed("alice", secure=True, reset=True, actor="alice")
        self.assertEqual(self.e.user("alice").risk_detail,
                         RiskDetail.USER_PERFORMED_SECURED_PASSWORD_RESET)
        # R-PW-3: refused for deleted users.
        self.e.upsert_user("bob", deleted=True)
        with self.assertRaises(librisk.UserDeleted):
            self.e.generate_temporary_password("bob")

    def test_dismiss(self):
        # R-DI-1: dismiss closes all, flags untouched; R-DI-3 idempotent.
        r = self.e.dismiss("alice", note="benign")
        self.assertEqual((r.user_id, r.closed, r.ok), ("alice", 2, True))
        self.assertEqual(self.e.user("alice").risk_state, RiskState.DISMISSED)
        self.assertEqual(self.e.dismiss("alice").closed, 0)
        # R-DI-4: bulk, per-user results.
        res = self.e.dismiss(["bob", "nobody"])
        self.assertEqual([x.closed for x in res], [2, 0])
        self.assertIsInstance(res[1].error, librisk.NotFound)
        # R-EV-4: dismissed events cannot be reactivated.
        with self.assertRaises(librisk.TransitionError):
            self.e.reactivate("bob-1")

    def test_individual_events(self):
        # R-IN-1, R-EV-2, R-EV-3: close one by one, reactivate.
        fb = []
        e = engine(feedback=lambda ev, withdrawn: fb.append((ev.id, withdrawn)))
        e.ingest("carol", "c1", "leakedCredentials", "high", T0)
        e.ingest("carol", "c2", "anonymizedIPAddress", "medium", T0)
        e.ingest("carol", "c3", "unfamiliarFeatures", "low", T0)
        e.resolve("c1", note="checked")
        e.mark_false_positive("c2")
        with self.assertRaises(librisk.InvalidArgument):  # R-EV-2: note required
            e.ignore("c3")
        e.ignore("c3", note="travel")
        u = e.user("carol")
        self.assertEqual((u.risk_level, u.risk_state, u.risk_detail),
                         (Level.NONE, RiskState.NONE, RiskDetail.ADMIN_CLOSED_EVENTS))
        self.assertEqual(fb, [("c2", False)])  # R-IN-2
        e.reactivate("c2")
        self.assertEqual(fb, [("c2", False), ("c2", True)])
        self.assertEqual(e.user("carol").risk_level, Level.MEDIUM)
        self.assertEqual(e.event("c1").closed_by, "admin")
        with self.assertRaises(librisk.TransitionError):  # R-EV-5
            e.resolve("c1")
        e.close()

    def test_confirm(self):
        # R-US-3, R-US-4.
        self.e.confirm_compromised("alice")
        self.assertEqual(self.e.user("alice").risk_state, RiskState.CONFIRMED_COMPROMISED)
        with self.assertRaises(librisk.TransitionError):
            self.e.confirm_safe("alice")
        self.e.confirm_safe("bob")
        u = self.e.user("bob")
        self.assertEqual((u.risk_state, u.risk_level), (RiskState.CONFIRMED_SAFE, Level.NONE))

    def test_ingest_idempotent_and_update(self):
        # R-OP-1, R-OP-7.
        n = len(list(self.e.history()))
        self.e.ingest("alice", "alice-1", "leakedCredentials", "high", T0)
        self.assertEqual(len(list(self.e.history())), n)
        with self.assertRaises(librisk.AlreadyExists):
            self.e.ingest("alice", "alice-1", "leakedCredentials", "low", T0)
        self.e.ingest("alice", "alice-1", "leakedCredentials", "low", T0, update=True)
        self.assertEqual(self.e.event("alice-1").level, Level.LOW)

    def test_queries(self):
        # R-OP-5: users by level, events by time, history feed.
        self.e.ingest("zed", "z1", "unfamiliarFeatures", "low", T0)
        self.assertEqual([u.id for u in self.e.users(Level.LOW)], ["alice", "bob", "zed"])
        self.assertEqual([u.id for u in self.e.users("high")], ["alice", "bob"])
        self.assertEqual([ev.id for ev in self.e.events("alice", active_only=True)],
                         ["alice-1", "alice-2"])
        feed = list(self.e.history())
        self.assertEqual([h.seq for h in feed], sorted(h.seq for h in feed))
        self.assertIn(HistoryAction.POLICY_SET, [h.action for h in feed])
        later = list(self.e.history(since=feed[-2].seq))
        self.assertEqual(len(later), 2)
        self.assertTrue(all(h.user_id == "bob" for h in self.e.history("bob")))
        self.assertEqual([p.name for p in self.e.policies()], ["pw"])
        self.e.remove_policy("pw")
        self.assertEqual(list(self.e.policies()), [])
        with self.assertRaises(librisk.NotFound):
            self.e.remove_policy("pw")

    def test_explain_and_scoring(self):
        # R-SC-3, R-SC-6, R-SC-8.
        e = engine(scoring=Scoring(type_aging={"unfamiliarFeatures": timedelta(days=30)}))
        e.ingest("u", "a", "unfamiliarFeatures", "low", T0)
        e.ingest("u", "b", "leakedCredentials", "medium", T0)
        x = e.explain("u")
        self.assertEqual((x.level, x.score, x.counted), (Level.MEDIUM, 4, 2))
        a = next(i for i in x.items if i.event_id == "a")
        self.assertTrue(a.type_override)
        self.assertEqual(a.aging, timedelta(days=30))
        self.assertEqual(a.ages_at, T0 + timedelta(days=30))
        e.close()
        with self.assertRaises(librisk.InvalidArgument):  # R-SC-7
            Engine.memory(scoring=Scoring(thresholds=(5, 3, 9)))

    def test_user_change_hook_and_clock(self):
        # R-OP-8: hook after commit with before/after.
        seen = []
        now = [T0]
        e = Engine.memory(clock=lambda: now[0], on_user_change=lambda b, a: seen.append(
            (b.risk_level if b else None, a.risk_level)))
        e.ingest("u", "a", "leakedCredentials", "high", T0)
        self.assertEqual(seen[-1][1], Level.HIGH)
        now[0] = T0 + timedelta(days=3)
        self.assertEqual(e.now(), T0 + timedelta(days=3))
        e.close()

    def test_journal(self):
        # R-CC-3 through Python: reopen sees the state; a second writer is Busy.
        import os
        import tempfile
        d = tempfile.mkdtemp()
        path = os.path.join(d, "j.risk")
        with Engine.open(path, durability="off", clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            with self.assertRaises(librisk.Busy):
                Engine.open(path)
        with Engine.open(path) as e:
            self.assertEqual(e.user("u").risk_level, Level.HIGH)
        with self.assertRaises(librisk.InvalidArgument):
            Engine.open(path, durability="sometimes")


if __name__ == "__main__":
    unittest.main()
