"""Pins what a mutation round over the Python binding (engine.py, types.py,
stores.py, _hoststore.py, errors.py, graph.py) found unpinned: each test
names the mutant it kills ("kills: ...") and the SPEC rule it holds to."""
from __future__ import annotations

import gc
import sqlite3
import unittest
from datetime import datetime, timedelta, timezone

import librisk
from librisk import (Anchor, CloseReason, Control, Decision, Engine, HistoryAction,
                     InvalidArgument, Level, Policy, PolicyMode, Reason, RiskState, Scoring)
from librisk.graph import import_graph, parse_time
from librisk.stores import SQLiteStore
from librisk.types import ReportOnly
from support import DAY, T0, DictStore, TempDirCase
from test_graph import GraphEngineCase, U, det, page
from test_leaks import rss_bytes


class TestTimes(unittest.TestCase):
    def test_microseconds_are_cut_not_rounded(self):
        # types.to_ms: ".999999 → .999", never into the next millisecond
        # (kills: floor division replaced by round()).
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0 + timedelta(microseconds=999999))
            self.assertEqual(e.event("a").detected_at, T0 + timedelta(microseconds=999000))

    def test_the_last_millisecond_python_holds_reads_back_exactly(self):
        # types.from_ms: only a time past what datetime holds reads as
        # datetime.max; 9999-12-31 23:59:59.999 itself round-trips
        # (kills: "ms > _PY_MAX_MS" weakened to ">=").
        last = datetime.max.replace(tzinfo=timezone.utc)
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", last)
            self.assertEqual(e.event("a").detected_at, last.replace(microsecond=999000))


class TestRecords(unittest.TestCase):
    def test_report_only_outcomes_reach_the_verdict(self):
        # R-PO-4: a report-only policy decides nothing but is reported, each
        # one (kills: the report-only loop starting at 1).
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            e.set_policy("watch", "medium", "block", mode="report_only")
            v = e.sign_in("u")
            self.assertEqual(v.decision, Decision.ALLOW)
            self.assertEqual(v.report_only,
                             (ReportOnly("watch", Decision.BLOCK, Reason.RISK_LEVEL),))

    def test_policy_read_back_keeps_include_and_exclude_apart(self):
        # R-OP-6 (kills: Policy._from_handle reading exclude through include_at).
        with Engine.memory(clock=T0) as e:
            e.set_policy("p", "high", "block", include=["in1", "in2"], exclude=["out"])
            (p,) = e.policies()
            self.assertEqual((p.include, p.exclude, p.mode), (("in1", "in2"), ("out",),
                                                               PolicyMode.ON))

    def test_history_levels_before_and_after(self):
        # SPEC §2 "History item": user level before and after the action
        # (kills: level_before read from level_after).
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            (h,) = [i for i in e.history("u") if i.action is HistoryAction.INGEST]
            self.assertEqual((h.level_before, h.level_after), (Level.NONE, Level.HIGH))

    def test_an_event_that_never_ages_has_no_aging(self):
        # R-SC-2 ("0 means never"), R-SC-6: a never-aging event explains with
        # aging None, as Scoring spells never (kills: aging 0 read as
        # timedelta(0)).
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            (item,) = e.explain("u").items
            self.assertIsNone(item.aging)
            self.assertIsNone(item.ages_at)

    def test_each_levels_aging_period_is_its_own(self):
        # R-SC-2, R-SC-7 (kills: aging_medium taken from aging_high).
        sc = Scoring(aging_medium=timedelta(days=10), aging_high=timedelta(days=20))
        with Engine.memory(clock=T0, scoring=sc) as e:
            e.ingest("u", "m", "leakedCredentials", "medium", T0)
            e.ingest("u", "h", "anonymizedIPAddress", "high", T0)
            by_id = {i.event_id: i for i in e.explain("u").items}
            self.assertEqual(by_id["m"].aging, timedelta(days=10))
            self.assertEqual(by_id["h"].aging, timedelta(days=20))

    def test_a_short_anchor_hash_is_an_invalid_argument(self):
        # R-IV-1: an anchor whose hash is not 32 bytes is InvalidArgument, not
        # a ctypes ValueError (kills: "!= 32" weakened to "> 32").
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            a = e.history_anchor()
            with self.assertRaises(InvalidArgument):
                e.verify_history(Anchor(a.seq, a.subjects, a.hash[:31]))

    def test_what_if_count_by_decision_and_reason(self):
        # R-WI-1 (kills: WhatIf.count ignoring the reason).
        with Engine.memory(clock=T0 + DAY) as e:
            e.upsert_user("mfa", mfa_registered=True, mfa_registered_at=T0 - DAY)
            e.ingest("mfa", "a", "leakedCredentials", "high", T0)
            e.ingest("nomfa", "b", "leakedCredentials", "high", T0)
            w = e.what_if([Policy("pw", Level.MEDIUM, Control.REQUIRE_PASSWORD_CHANGE)])
            self.assertEqual(w.count("require_password_change"), 1)
            self.assertEqual(w.count("block"), 1)
            self.assertEqual(w.count("block", "not_mfa_registered"), 1)
            self.assertEqual(w.count("block", Reason.RISK_LEVEL), 0)


class TestEngineOptionsAndQueries(unittest.TestCase):
    def test_active_only_lists_active_events_only(self):
        # R-OP-5: a user's events, all or active only (kills: active_only
        # flag not passed to risk_engine_events).
        with Engine.memory(clock=T0 + DAY) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            e.ingest("u", "b", "leakedCredentials", "low", T0)
            e.resolve("a")
            self.assertEqual([x.id for x in e.events("u")], ["a", "b"])
            self.assertEqual([x.id for x in e.events("u", active_only=True)], ["b"])

    def test_refuse_unknown_users(self):
        # R-OP-2: an engine configured to refuse raises NotFound and creates
        # nothing (kills: the refuse_unknown_users option dropped).
        with Engine.memory(clock=T0, refuse_unknown_users=True) as e:
            with self.assertRaises(librisk.NotFound):
                e.ingest("ghost", "a", "leakedCredentials", "high", T0)
            with self.assertRaises(librisk.NotFound):
                e.event("a")
            e.upsert_user("known")
            e.ingest("known", "b", "leakedCredentials", "high", T0)
            self.assertEqual([u.id for u in e.users()], ["known"])

    def test_user_history_since_includes_that_seq(self):
        # R-OP-5: "from a sequence number on" includes that number, for a
        # user's history as for the feed (kills: ">= since" made "> since").
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            e.ingest("u", "b", "leakedCredentials", "low", T0)
            seqs = [h.seq for h in e.history("u")]
            self.assertEqual(len(seqs), 2)
            self.assertEqual([h.seq for h in e.history("u", since=seqs[1])], seqs[1:])
            self.assertEqual([h.seq for h in e.history(since=seqs[1])], seqs[1:])


class _FailFor(DictStore):
    """A host store whose get_user fails for some users, naming the user."""

    def __init__(self, bad):
        super().__init__()
        self.bad = set(bad)

    def get_user(self, txn, id):
        if id in self.bad:
            raise RuntimeError(f"disk gone under {id}")
        return super().get_user(txn, id)


class TestEngineMore(unittest.TestCase):
    def test_sign_in_many_on_a_host_store_raises_the_first_failure(self):
        # R-PO-9: every verdict fails closed, and the error raised is the
        # first failure's (kills: the last failure's raised instead).
        with Engine(store=_FailFor({"x", "y"}), clock=T0) as e:
            with self.assertRaises(librisk.StoreError) as cm:
                e.sign_in_many(["ok", "x", "y"])
            self.assertIn("under x", str(cm.exception))
            self.assertEqual([v.decision for v in cm.exception.verdicts],
                             [Decision.ALLOW, Decision.BLOCK, Decision.BLOCK])

    def test_what_if_at_a_later_time(self):
        # R-WI-1: the candidate policies are decided at ``at`` (kills: ``at``
        # ignored, the engine's now used).
        sc = Scoring(aging_high=timedelta(days=10))
        with Engine.memory(clock=T0 + DAY, scoring=sc) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            block = [Policy("b", Level.HIGH, Control.BLOCK)]
            self.assertEqual(e.what_if(block).count("block"), 1)
            later = e.what_if(block, at=T0 + 20 * DAY)
            self.assertEqual((later.count("block"), later.count("allow")), (0, 1))
            self.assertEqual(later.at, T0 + 20 * DAY)

    def test_a_refused_memory_engine_frees_its_store(self):
        # R-IV-3 "nothing leaks": the memory store Engine.__init__ made is
        # closed when the engine cannot be made (kills: "if created:
        # _close_cstore" dropped).
        naive = datetime(2026, 1, 1)
        for _ in range(5):  # warm up
            with self.assertRaises(InvalidArgument):
                Engine.memory(clock=naive)
        gc.collect()
        rss0 = rss_bytes()
        for _ in range(50):  # an empty memory store holds about 1 MB
            with self.assertRaises(InvalidArgument):
                Engine.memory(clock=naive)
        gc.collect()
        self.assertLess(rss_bytes() - rss0, 16 * 1024 * 1024)


class TestSQLiteStoreMore(TempDirCase):

    def store(self, **kw):
        kw.setdefault("synchronous", "OFF")
        return SQLiteStore(self.path, **kw)

    def test_a_policy_removed_by_one_engine_is_gone_for_the_other(self):
        # R-ST-6, R-OP-6: a removal bumps the policy generation too, so an
        # engine that has seen the latest generation drops its cached policy
        # (kills: remove_policy not bumping the generation).
        with Engine(store=self.store(), clock=T0 + DAY, actor="a") as a, \
                Engine(store=self.store(), clock=T0 + DAY, actor="b") as b:
            a.ingest("alice", "a1", "leakedCredentials", "high", T0)
            a.set_policy("block-high", "high", "block")
            self.assertEqual(b.sign_in("alice").decision, Decision.BLOCK)
            a.remove_policy("block-high")
            self.assertEqual(b.sign_in("alice").decision, Decision.ALLOW)
            # removed already: the other engine's removal is NotFound
            with self.assertRaises(librisk.NotFound):
                b.remove_policy("block-high")

    def test_removing_an_absent_policy_is_not_found_and_bumps_nothing(self):
        # store.h remove_policy: "RISK_ENOTFOUND if absent" (the engine checks
        # first, so this is the store's own contract, for hosts calling it);
        # nothing changed, so the policy generation stays (kills: the
        # rowcount check of SQLiteStore.remove_policy dropped).
        st = self.store()
        try:
            gen = st.policies_generation()
            txn = st.begin(None)
            try:
                with self.assertRaises(librisk.NotFound):
                    st.remove_policy(txn, "nope")
            finally:
                st.rollback(txn)
            txn = st.begin(None)
            st.put_meta(txn, "k", b"v")
            st.commit(txn)
            self.assertEqual(st.policies_generation(), gen)
        finally:
            st.close()

    def test_users_at_or_above_a_level(self):
        # R-OP-5: users at or above a level, on SQLite too (kills:
        # list_users' "level >= ?" made "level > ?").
        with Engine(store=self.store(), clock=T0) as e:
            e.upsert_user("calm")
            e.ingest("hot", "h", "leakedCredentials", "high", T0)
            e.ingest("warm", "m", "leakedCredentials", "medium", T0)
            self.assertEqual([u.id for u in e.users()], ["hot", "warm", "calm"])
            self.assertEqual([u.id for u in e.users("medium")], ["hot", "warm"])
            self.assertEqual([u.id for u in e.users("high")], ["hot"])

    def test_read_history_from_a_seq_on_includes_it(self):
        # HostStore.read_history(user_id | None, since_seq): "from since_seq
        # on", for one user as for the feed (kills: the user query's
        # "seq >= ?" made "seq > ?").
        st = self.store()
        with Engine(store=st, clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            e.ingest("u", "b", "leakedCredentials", "low", T0)
            seqs = [h.seq for h in e.history("u")]
            self.assertEqual(len(st.read_history("u", seqs[1])), 1)
            self.assertEqual(len(st.read_history(None, seqs[1])), 1)
            self.assertEqual(len(st.read_history("u", seqs[0])), 2)

    def test_a_failed_commit_lets_go_of_the_write_lock(self):
        # R-CC-2: a COMMIT that fails is rolled back by the store at once
        # (the engine does not roll back after a failed commit), so the
        # database's write lock is not held until this thread's next
        # operation (kills: the ROLLBACK after a failed COMMIT dropped).
        class FailingCommit(SQLiteStore):
            fail = False

            def begin(self, user_id):
                txn = super().begin(user_id)
                if self.fail:
                    txn.conn = _CommitFails(txn.conn)
                return txn

        st = FailingCommit(self.path, synchronous="OFF")
        with Engine(store=st, clock=T0) as e:
            st.fail = True
            with self.assertRaises(librisk.RiskError):
                e.ingest("u", "a", "leakedCredentials", "high", T0)
            other = self.store(timeout=0.5)
            with Engine(store=other, clock=T0) as e2:
                e2.ingest("v", "b", "leakedCredentials", "high", T0)  # no "database is locked"
                with self.assertRaises(librisk.NotFound):
                    e2.event("a")


class _CommitFails:
    """A sqlite3 connection whose COMMIT fails (a disk error at commit)."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, *args):
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return self._conn.execute(sql, *args)

    @property
    def in_transaction(self):
        return self._conn.in_transaction


class TestHostStoreRecords(unittest.TestCase):
    def test_event_records_say_whether_the_event_is_active(self):
        # EventRecord.active (stores.py), the column a store indexes: true
        # for an active event, false once closed (kills: the flag inverted).
        seen = []

        class Recording(DictStore):
            def put_event(self, txn, event):
                seen.append((event.id, event.active))
                super().put_event(txn, event)

        with Engine(store=Recording(), clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            self.assertEqual(seen, [("a", True)])
            e.resolve("a")
            self.assertEqual(seen[-1], ("a", False))


class TestParseAndAdapter(unittest.TestCase):
    def test_enum_members_parse_from_their_upper_case_names(self):
        # types._Named.parse: "a member or its spelling ("at_risk" or
        # "AT_RISK")", so every enum argument takes either (kills: the
        # upper-case name lookup made case-sensitive).
        self.assertIs(RiskState.parse("AT_RISK"), RiskState.AT_RISK)
        self.assertIs(PolicyMode.parse("Report_Only"), PolicyMode.REPORT_ONLY)
        with Engine.memory(clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0, timing="OFFLINE")
            self.assertIs(e.event("a").timing, librisk.Timing.OFFLINE)

    def test_an_absent_record_raised_as_not_found_is_no_store_failure(self):
        # stores.HostStore: "Raise NotFound or return None for an absent
        # record": either way it is an answer, not a failure, so the NotFound
        # the caller gets is not chained to the store's (kills: every
        # callback exception remembered, ENOTFOUND included).
        class RaisingAbsent(DictStore):
            def get_event(self, txn, id):
                rec = txn["data"]["events"].get(id)
                if rec is None:
                    raise librisk.NotFound(f"no event {id}")
                return rec[1]

        with Engine(store=RaisingAbsent(), clock=T0) as e:
            e.ingest("u", "a", "leakedCredentials", "high", T0)
            with self.assertRaises(librisk.NotFound) as cm:
                e.event("nope")
            self.assertIsNone(cm.exception.__cause__)

    def test_closed_engines_leave_no_share_count(self):
        # _hoststore._sharers counts the engines on each store object; the
        # last one to close removes the entry (kills: a count of 0 kept, one
        # entry leaked per store object).
        from librisk import _hoststore
        for _ in range(3):
            st = DictStore()
            with Engine(store=st, clock=T0), Engine(store=st, clock=T0):
                self.assertEqual(_hoststore._sharers.get(id(st)), 2)
            self.assertNotIn(id(st), _hoststore._sharers)
            self.assertTrue(st.closed)


class TestGraphMapping(GraphEngineCase):
    """graph.py (SPEC §5 interop): mappings the sample export leaves open."""

    def test_levels_map_one_to_one(self):
        # riskLevel → level (kills: "medium" mapped to HIGH).
        s = import_graph(self.e, [page(det("L", level="low"), det("M", level="medium", day=2),
                                       det("H", level="high", day=3))])
        self.assertEqual(s.added, 3)
        self.assertEqual([self.e.event(x).level for x in "LMH"],
                         [Level.LOW, Level.MEDIUM, Level.HIGH])

    def test_state_none_is_active(self):
        # riskState "none" (and a missing one) is active (kills: "none" dropped
        # from the active states: the detection skipped as unknown).
        s = import_graph(self.e, [page(det("N", state="none"))])
        self.assertEqual((s.added, s.skipped), (1, []))
        self.assertTrue(self.e.event("N").active)

    def test_same_detection_same_update_time_the_later_copy_counts(self):
        # graph.py module doc: "the later one on a tie". (The round's mutant
        # ">=" → ">" is equivalent: the key carries the input position; this
        # pins the documented rule, which no test held.)
        t = "2026-11-05T00:00:00Z"
        s = import_graph(self.e, [det("D", updated=t),
                                  det("D", "dismissed", "adminDismissedAllRiskForUser",
                                      updated=t)])
        self.assertEqual(self.e.event("D").close_reason, CloseReason.DISMISSED)
        self.assertIn("superseded", str(s))

    def test_sub_millisecond_update_times_still_order_copies(self):
        # parse_time keeps up to 6 of Graph's 7 fractional digits; the
        # dedupe by lastUpdatedDateTime sees a difference of 0.1 ms (kills:
        # the fraction cut to milliseconds, which made it a tie).
        self.assertEqual(parse_time("2026-11-05T00:00:00.7736020Z").microsecond, 773602)
        import_graph(self.e, [det("D", updated="2026-11-05T00:00:00.0002Z"),
                              det("D", "dismissed", "adminDismissedAllRiskForUser",
                                  updated="2026-11-05T00:00:00.0001Z")])
        self.assertTrue(self.e.event("D").active)

    def test_a_self_service_reset_is_replayed_as_a_reset(self):
        # riskDetail userPerformedSecuredPasswordReset → a secure reset
        # (R-PO-10) in the history, not a change (kills: reset=False). The
        # user's MFA predates the detection, so it counts (R-PO-11).
        self.e.upsert_user(U, mfa_registered=True,
                           mfa_registered_at=datetime(2026, 10, 1, tzinfo=timezone.utc))
        import_graph(self.e, [page(det("R", "remediated", "userPerformedSecuredPasswordReset"))])
        actions = [h.action for h in self.e.history(U)]
        self.assertIn(HistoryAction.SECURE_PASSWORD_RESET, actions)
        self.assertNotIn(HistoryAction.SECURE_PASSWORD_CHANGE, actions)
        self.assertEqual(self.e.event("R").close_reason, CloseReason.REMEDIATED)

    def test_ai_confirmed_signin_safe_closes_that_detection_only(self):
        # aiConfirmedSigninSafe is a per-detection closing → resolved, not a
        # user-wide remediation (kills: it dropped from _PER_DETECTION).
        s = import_graph(self.e, [page(det("S", "remediated", "aiConfirmedSigninSafe"))])
        self.assertEqual(self.e.event("S").close_reason, CloseReason.RESOLVED)
        self.assertEqual(s.closed, {"resolved": 1})

    def test_closings_ordered_by_their_latest_update(self):
        # "the closings of a user replayed in the order of their
        # lastUpdatedDateTime": a group of closings counts at its latest one
        # (kills: max → min).
        import_graph(self.e, [page(
            det("D1", "dismissed", "adminDismissedAllRiskForUser", day=1,
                updated="2026-11-01T00:00:00Z"),
            det("D2", "dismissed", "adminDismissedAllRiskForUser", day=2,
                updated="2026-11-20T00:00:00Z"),
            det("X", "remediated", "userPerformedSecuredPasswordChange", day=3,
                updated="2026-11-10T00:00:00Z"))])
        self.assertEqual(self.e.event("X").close_reason, CloseReason.REMEDIATED)
        self.assertEqual(self.e.event("D2").close_reason, CloseReason.DISMISSED)
        self.assertEqual(self.e.user(U).risk_state, RiskState.DISMISSED)

    def test_a_temporary_password_counts_every_event_it_closes(self):
        # adminGeneratedTemporaryPassword closes the user's other active
        # events too, and the summary counts them (kills: only the input's).
        self.e.ingest(U, "old", "leakedCredentials", "low",
                      datetime(2026, 10, 1, tzinfo=timezone.utc))
        s = import_graph(self.e, [page(det("T", "remediated",
                                           "adminGeneratedTemporaryPassword"))])
        self.assertEqual(s.closed, {"remediated": 2})
        self.assertFalse(self.e.event("old").active)

    def test_a_renamed_user_is_noted_under_user_principal_names(self):
        # user_key="userPrincipalName": one userId under two names becomes two
        # librisk users, and a note says so (kills: the note only from 3 names).
        a, b = det("A"), det("B", day=2)
        b["userPrincipalName"] = "renamed@contoso.com"
        s = import_graph(self.e, [page(a, b)], user_key="userPrincipalName")
        self.assertEqual(s.added, 2)
        self.assertTrue(any("several userPrincipalNames" in n for n in s.notes), s.notes)

    def test_a_failed_closing_makes_the_import_not_ok(self):
        # "ok is false when ... a closing failed" (kills: ok ignoring failed).
        # A deleted user gets no temporary password (R-PW-3).
        self.e.upsert_user(U, deleted=True)
        s = import_graph(self.e, [page(det("T", "remediated",
                                           "adminGeneratedTemporaryPassword"))])
        self.assertTrue(s.failed, str(s))
        self.assertEqual(s.skipped, [])
        self.assertFalse(s.ok)


if __name__ == "__main__":
    unittest.main()
