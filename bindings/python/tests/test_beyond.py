"""SPEC §10 through Python: audit chain and anchor, what-if, receipts."""
from __future__ import annotations

import unittest

import librisk
from librisk import Anchor, Control, Decision, Engine, Level, Policy, Reason
from support import DAY, T0, FullDictStore

KEY = b"0123456789abcdef0123456789abcdef"


class TestAudit(unittest.TestCase):
    def test_verify_and_anchor(self):
        # R-AU-1, R-AU-2, R-AU-3: intact chains verify; a tampered item is found.
        store = FullDictStore()
        e = Engine(store=store, clock=T0)
        e.ingest("u", "a", "leakedCredentials", "high", T0)
        e.ingest("v", "b", "leakedCredentials", "low", T0)
        e.set_policy("p", "high", "block")
        e.verify_history()
        anchor = e.history_anchor()
        self.assertEqual(anchor.seq, 3)
        self.assertEqual(Anchor.parse(str(anchor)), anchor)
        e.verify_history(anchor)
        # Tamper: replace item 2 with item 1's bytes under seq 2's key.
        user, data = store.data["history"][1]
        store.data["history"][2] = (store.data["history"][2][0], data)
        with self.assertRaises(librisk.VerificationError) as cm:
            e.verify_history()
        # The forged item carries item 1's sequence number again: the
        # verifier names it by that number (a duplicate, out of order).
        self.assertEqual(cm.exception.bad_seq, 1)
        e.close()


class TestWhatIf(unittest.TestCase):
    def test_prediction_matches_reality(self):
        # R-WI-1, R-WI-2.
        e = Engine.memory(clock=T0 + DAY)
        e.upsert_user("mfa", mfa_registered=True, mfa_registered_at=T0 - DAY)
        e.ingest("mfa", "a", "leakedCredentials", "high", T0)
        e.ingest("nomfa", "b", "leakedCredentials", "high", T0)
        e.ingest("low", "c", "unfamiliarFeatures", "low", T0)
        candidate = [Policy("pw", Level.MEDIUM, Control.REQUIRE_PASSWORD_CHANGE)]
        n = len(list(e.history()))
        w = e.what_if(candidate)
        self.assertEqual(len(list(e.history())), n)  # changes nothing
        self.assertEqual(w.total, 3)
        self.assertEqual(w.users[(Decision.REQUIRE_PASSWORD_CHANGE, Reason.RISK_LEVEL)],
                         ("mfa",))
        self.assertEqual(w.count("block"), 1)
        self.assertEqual(w.count(Decision.ALLOW), 1)
        for p in candidate:
            e.set_policy(p)
        for (decision, reason), ids in w.users.items():
            for uid in ids:
                v = e.sign_in(uid)
                self.assertEqual((v.decision, v.reason), (decision, reason), uid)
        e.close()


class TestReceipts(unittest.TestCase):
    def test_receipt_round_trip(self):
        # R-RC-1: a receipt verifies; any altered field fails.
        e = Engine.memory(clock=T0, receipt_key=KEY)
        e.ingest("u", "a", "leakedCredentials", "high", T0)
        e.set_policy("p", "high", "block")
        v = e.sign_in("u", receipt=True)
        self.assertIsNotNone(v.receipt)
        self.assertIsNone(e.sign_in("u").receipt)
        self.assertTrue(e.verify_receipt(v.receipt))
        self.assertFalse(e.verify_receipt(v.receipt.replace("block", "allow")))
        self.assertFalse(e.verify_receipt(v.receipt, key=b"another key of 16+ bytes"))
        e.close()
        with Engine.memory() as plain:
            with self.assertRaises(librisk.InvalidArgument):
                plain.verify_receipt("x")


if __name__ == "__main__":
    unittest.main()
