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
        self.assertIn("duplicate", skipped[ID + "01"])
        self.assertIn("somethingNew", skipped[ID + "12"])
        self.assertIn("type", skipped[ID + "13"])  # refused by the library (R-IV-1)
        self.assertEqual(len(s.skipped), 8)
        self.assertIn("skipped", str(s))

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
            s = import_graph(e, io.StringIO(lines + "\n{not json\n"),
                             user_key="userPrincipalName")
            self.assertEqual(s.added, 3)
            self.assertEqual(e.event(ID + "01").user_id, "alice@contoso.com")
            self.assertIn("not JSON", s.skipped[0][1])

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
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("added 6", out.stdout)
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            self.assertIn("added 0, unchanged 6", out.stdout)
            out = subprocess.run([sys.executable, "-m", "librisk", "import-graph",
                                  os.path.join(d, "missing.json")],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1)


if __name__ == "__main__":
    unittest.main()
