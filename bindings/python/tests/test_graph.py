"""Import of a hand-written Microsoft Graph riskDetection export (SPEC §5)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timezone
from pathlib import Path

from librisk import CloseReason, Engine, EventState, Level, RiskState, Timing
from librisk.graph import import_graph, parse_time
from support import T0

SAMPLE = Path(__file__).resolve().parent / "data" / "graph_sample.json"
ALICE = "11111111-1111-1111-1111-111111111111"
BOB = "22222222-2222-2222-2222-222222222222"
CAROL = "33333333-3333-3333-3333-333333333333"
ID = "6b0d9b5e0f2c4d1aa1c0e0d1a7c3a0"


class TestGraphImport(unittest.TestCase):
    def setUp(self):
        self.e = Engine.memory(clock=T0)
        self.summary = import_graph(self.e, SAMPLE)

    def tearDown(self):
        self.e.close()

    def test_summary(self):
        s = self.summary
        self.assertEqual(s.added, 6)
        self.assertEqual(s.closed, {"remediated": 1, "dismissed": 1, "false_positive": 1})
        skipped = dict(s.skipped)
        # Levels none/hidden/unknown are reported and skipped, never guessed.
        self.assertIn("hidden", skipped[ID + "07"])
        self.assertIn("none", skipped[ID + "08"])
        self.assertIn("unknownFutureValue", skipped[ID + "09"])
        self.assertIn("userId", skipped[ID + "10"])
        self.assertIn("ISO 8601", skipped[ID + "11"])
        # The same id twice: the copy updated last counts, the other is noted.
        self.assertNotIn(ID + "01", skipped)
        self.assertTrue(any(n.startswith(ID + "01: an older copy") for n in s.notes), s.notes)
        self.assertIn("somethingNew", skipped[ID + "12"])
        self.assertIn("type", skipped[ID + "13"])  # refused by the library (R-IV-1)
        self.assertEqual(len(s.skipped), 7)
        self.assertIn("skipped", str(s))
        self.assertFalse(s.ok)

    def test_field_mapping(self):
        ev = self.e.event(ID + "01")
        self.assertEqual((ev.user_id, ev.type, ev.level, ev.timing, ev.ip, ev.source),
                         (ALICE, "unfamiliarFeatures", Level.LOW, Timing.REALTIME,
                          "203.0.113.7", "IdentityProtection"))
        self.assertEqual(ev.location, "Seattle, Washington, US")
        self.assertEqual(ev.detected_at,
                         datetime(2026, 1, 1, 8, 0, 1, 123000, tzinfo=timezone.utc))
        self.assertEqual(self.e.event(ID + "02").timing, Timing.OFFLINE)
        self.assertIsNone(self.e.event(ID + "02").location)
        self.assertEqual(self.e.event(ID + "03").location, "Berlin, DE")
        self.assertEqual(self.e.event(ID + "04").detected_at,
                         datetime(2025, 12, 21, 9, 0, tzinfo=timezone.utc))
        self.assertEqual(self.e.user(ALICE).risk_level, Level.HIGH)

    def test_closed_states_closed_the_matching_way(self):
        for eid, reason in (("03", CloseReason.REMEDIATED), ("04", CloseReason.DISMISSED),
                            ("05", CloseReason.FALSE_POSITIVE)):
            ev = self.e.event(ID + eid)
            self.assertEqual((ev.state, ev.close_reason, ev.closed_by),
                             (EventState.CLOSED, reason, "graph-import"), eid)
        self.assertEqual(self.e.user(BOB).risk_state, RiskState.REMEDIATED)
        # Carol's still-active detection is replayed after the closings.
        self.assertTrue(self.e.event(ID + "06").active)
        self.assertEqual(self.e.user(CAROL).risk_state, RiskState.AT_RISK)

    def test_reimport_changes_nothing(self):
        feed = list(self.e.history())
        again = import_graph(self.e, SAMPLE)
        self.assertEqual((again.added, again.closed, again.unchanged), (0, {}, 6))
        self.assertEqual(list(self.e.history()), feed)

    def test_json_lines_and_user_key(self):
        lines = "\n".join(json.dumps(d) for d in json.loads(SAMPLE.read_text())["value"][:3])
        with Engine.memory(clock=T0) as e:
            s = import_graph(e, io.StringIO(lines + "\n"), user_key="userPrincipalName")
            self.assertEqual((s.added, s.ok), (3, True))
            self.assertEqual(e.event(ID + "01").user_id, "alice@contoso.com")
            # a torn line (a truncated download) refuses the whole input
            with self.assertRaisesRegex(ValueError, "not JSON at line 4.*nothing imported"):
                import_graph(e, io.StringIO(lines + "\n{not json\n"))
            self.assertEqual(len(list(e.users())), 2)

    def test_parse_time(self):
        self.assertEqual(parse_time("2026-01-01T00:00:00Z"), T0)
        self.assertEqual(parse_time("2026-01-01T01:00:00+01:00"), T0)
        with self.assertRaises(ValueError):
            parse_time("2026-01-01 00:00")

    def test_cli(self):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "g.sqlite")
            cmd = [sys.executable, "-m", "librisk", "import-graph", str(SAMPLE), "--sqlite", db]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            # the sample has detections that cannot be imported: exit 1
            self.assertEqual(out.returncode, 1, out.stderr)
            self.assertIn("added 6", out.stdout)
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            self.assertIn("added 0, unchanged 6", out.stdout)
            good = os.path.join(d, "good.json")
            with open(good, "w") as f:
                json.dump({"value": json.loads(SAMPLE.read_text())["value"][:6]}, f)
            jr = os.path.join(d, "g.journal")
            out = subprocess.run([sys.executable, "-m", "librisk", "import-graph", good,
                                  "--journal", jr], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            with Engine.open(jr) as e:
                self.assertEqual(e.user(BOB).risk_state, RiskState.REMEDIATED)
            # a truncated file is refused before any store is made
            cut = os.path.join(d, "cut.json")
            with open(cut, "w") as f:
                f.write(SAMPLE.read_text()[:400])
            out = subprocess.run([sys.executable, "-m", "librisk", "import-graph", cut,
                                  "--journal", os.path.join(d, "new.journal")],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1)
            self.assertIn("nothing imported", out.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "new.journal")))
            out = subprocess.run([sys.executable, "-m", "librisk", "import-graph",
                                  os.path.join(d, "missing.json")],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1)


U = "77777777-0000-0000-0000-000000000001"


def det(did, state="atRisk", detail="none", level="high", day=1, updated=None, user=U,
        kind="leakedCredentials"):
    """A Graph riskDetection as the list API returns it."""
    d = {"id": did, "userId": user, "userPrincipalName": "u@contoso.com",
         "riskEventType": kind, "riskLevel": level, "riskState": state,
         "riskDetail": detail, "detectionTimingType": "offline",
         "detectedDateTime": f"2026-11-{day:02d}T10:02:00.7736020Z",
         "ipAddress": None, "location": None}
    if updated:
        d["lastUpdatedDateTime"] = updated
    return d


def page(*dets, next_link=False):
    p = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#riskDetections",
         "value": list(dets)}
    if next_link:
        p["@odata.nextLink"] = "https://graph.microsoft.com/v1.0/identityProtection/" \
                               "riskDetections?$skiptoken=x"
    return p


class GraphEngineCase(unittest.TestCase):
    """A test with a memory engine whose clock is 2026-12-01 (after the
    sample detections), closed afterwards."""

    def setUp(self):
        self.e = Engine.memory(clock=datetime(2026, 12, 1, tzinfo=timezone.utc))

    def tearDown(self):
        self.e.close()


class TestGraphStates(GraphEngineCase):
    """Graph states and closings as a security administrator migrating from
    Entra ID expects them (review of 2026-12-07)."""

    def test_a_later_import_keeps_risk_the_export_still_reports(self):
        # R-US-1: an event Graph still reports atRisk stays active; a user-wide
        # closing of another detection closes that one only.
        import_graph(self.e, [page(det("A"))])
        s = import_graph(self.e, [page(det("A"), det("B", "remediated",
                                                      "userPerformedSecuredPasswordChange",
                                                      "medium", day=2))])
        self.assertTrue(self.e.event("A").active)
        b = self.e.event("B")
        self.assertEqual((b.state, b.close_reason), (EventState.CLOSED, CloseReason.RESOLVED))
        self.assertIn("userPerformedSecuredPasswordChange", b.note)
        u = self.e.user(U)
        self.assertEqual((u.risk_level, u.risk_state), (Level.HIGH, RiskState.AT_RISK))
        self.assertEqual((s.added, s.unchanged, s.closed, s.ok), (1, 1, {"resolved": 1}, True))

    def test_a_per_detection_closing_closes_that_detection_only(self):
        # Sign-in risk remediated by MFA, a Defender dismissal: one detection each.
        s = import_graph(self.e, [page(
            det("A", day=1),
            det("B", "remediated", "userPassedMFADrivenByRiskBasedPolicy", "medium", day=2),
            det("C", "dismissed", "m365DAdminDismissedDetection", "low", day=3))])
        self.assertTrue(self.e.event("A").active)
        for eid in ("B", "C"):
            self.assertEqual(self.e.event(eid).close_reason, CloseReason.RESOLVED, eid)
        self.assertEqual(self.e.user(U).risk_level, Level.HIGH)
        self.assertEqual(s.closed, {"resolved": 2})

    def test_later_graph_states_reach_the_store(self):
        import_graph(self.e, [page(det("A"))])
        s = import_graph(self.e, [page(det("A", "dismissed", "adminDismissedAllRiskForUser"))])
        self.assertEqual(self.e.event("A").close_reason, CloseReason.DISMISSED)
        self.assertEqual(self.e.user(U).risk_state, RiskState.DISMISSED)
        self.assertEqual(s.closed, {"dismissed": 1})
        # The same id twice in one input: the copy updated last counts.
        s = import_graph(self.e, [det("D", updated="2026-11-03T00:00:00Z", day=2),
                                  det("D", "dismissed", "adminDismissedAllRiskForUser",
                                      updated="2026-11-02T00:00:00Z", day=2)])
        self.assertTrue(self.e.event("D").active)
        self.assertIn("superseded", str(s))

    def test_an_event_an_earlier_closing_of_the_replay_closed_is_left(self):
        import_graph(self.e, [det("X")])
        s = import_graph(self.e, [
            det("X", "remediated", "userPerformedSecuredPasswordChange",
                updated="2026-11-20T00:00:00Z"),
            det("Y", "dismissed", "adminDismissedAllRiskForUser", "low", day=2,
                updated="2026-11-10T00:00:00Z")])
        # the dismissal came first in Graph and closed X too; nothing fails
        self.assertEqual((s.added, s.ok, s.closed), (1, True, {"dismissed": 2}))
        self.assertEqual(self.e.event("X").close_reason, CloseReason.DISMISSED)

    def test_confirmed_compromised_confirms_the_user(self):
        # R-US-3: an admin's compromised verdict is high and confirmed_compromised.
        import_graph(self.e, [page(det("A", "confirmedCompromised",
                                       "adminConfirmedUserCompromised", "low"))])
        u = self.e.user(U)
        self.assertEqual((u.risk_level, u.risk_state), (Level.HIGH, RiskState.CONFIRMED_COMPROMISED))

    def test_closings_replay_in_the_order_graph_made_them(self):
        import_graph(self.e, [page(
            det("N", "remediated", "userPerformedSecuredPasswordReset", day=2,
                updated="2026-11-02T12:00:00Z"),
            det("O", "dismissed", "adminDismissedAllRiskForUser", day=1,
                updated="2026-10-02T00:00:00Z"))])
        self.assertEqual(self.e.user(U).risk_state, RiskState.REMEDIATED)
        self.assertEqual(self.e.event("O").close_reason, CloseReason.DISMISSED)
        self.assertEqual(self.e.event("N").close_reason, CloseReason.REMEDIATED)

    def test_pages_in_every_shape(self):
        p1 = page(det("P1"), det("P2", day=2), next_link=True)
        p2 = page(det("P3", day=3))
        self.assertEqual([d["id"] for d in
                          import_graph_ids(json.dumps(p1) + "\n" + json.dumps(p2))],
                         ["P1", "P2", "P3"])
        self.assertEqual([d["id"] for d in import_graph_ids(json.dumps([p1, p2], indent=2))],
                         ["P1", "P2", "P3"])
        s = import_graph(self.e, p1)  # one page, as resp.json() gives it
        self.assertEqual(s.added, 2)
        self.assertIn("@odata.nextLink", str(s))
        with tempfile.TemporaryDirectory() as d:
            for name, doc in (("1.json", p1), ("2.json", p2)):
                with open(os.path.join(d, name), "w", encoding="utf-16") as f:  # PowerShell's
                    json.dump(doc, f)
            s = import_graph(self.e, d)
            self.assertEqual((len(s.skipped), s.notes), (0, []))  # complete: no note
            os.remove(os.path.join(d, "2.json"))
            self.assertIn("@odata.nextLink", str(import_graph(self.e, d)))
        self.assertTrue(self.e.event("P3").active)

    def test_what_is_not_an_export_is_refused(self):
        for text in ('{"error": {"code": "Authorization_RequestDenied", "message": "x"}}',
                     '{"value": null}', '{"value": [', ""[:0] + '[{"id": "x"'):
            with self.assertRaises(ValueError, msg=text):
                import_graph(self.e, io.StringIO(text))
        s = import_graph(self.e, [page("oops", det("Q", state=["atRisk"]))])  # type: ignore
        self.assertEqual([why for _, why in s.skipped],
                         ["not a JSON object: 'oops'", "riskState is not a string"])
        self.assertEqual(list(self.e.users()), [])


def import_graph_ids(text):
    from librisk.graph import read_detections
    return read_detections(io.StringIO(text))


if __name__ == "__main__":
    unittest.main()
