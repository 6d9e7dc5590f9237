"""No reference or memory leaks: 100,000 read-only calls keep tracemalloc
and the RSS flat (handles freed, thunks reused, no cycles kept)."""
from __future__ import annotations

import gc
import os
import tracemalloc
import unittest

import librisk
from librisk import Engine
from support import T0

CALLS = 100_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class TestLeaks(unittest.TestCase):
    def test_read_only_calls_stay_flat(self):
        e = Engine.memory(clock=T0)
        e.ingest("u", "a", "leakedCredentials", "high", T0)
        e.ingest("u", "b", "unfamiliarFeatures", "low", T0)
        e.set_policy("p", "medium", "block")
        calls = [lambda: e.sign_in("u"), lambda: e.user("u"), lambda: e.event("a"),
                 lambda: list(e.events("u")), lambda: list(e.policies()),
                 lambda: e.explain("u"), lambda: e.sign_in("unknown")]
        # ingest_many of an event already there, and of a refused one: no writes
        again = [librisk.Event("a", "u", "leakedCredentials", librisk.Level.HIGH, T0),
                 librisk.Event("librisk:r", "u", "t", librisk.Level.LOW, T0)]
        calls.append(lambda: e.ingest_many(again))

        def missing():
            try:
                e.event("nope")
            except librisk.NotFound:
                pass
        calls.append(missing)

        def run(n):
            for i in range(n):
                calls[i % len(calls)]()

        run(10_000)  # warm caches, interned strings, enum tables
        gc.collect()
        tracemalloc.start()
        rss0 = rss_bytes()
        snap0 = tracemalloc.take_snapshot()
        run(CALLS)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        rss1 = rss_bytes()
        tracemalloc.stop()
        grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
        self.assertLess(grown, 64 * 1024, f"Python heap grew by {grown} bytes")
        self.assertLess(rss1 - rss0, 4 * 1024 * 1024, f"RSS grew by {rss1 - rss0} bytes")
        e.close()


if __name__ == "__main__":
    unittest.main()
