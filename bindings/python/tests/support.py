"""Shared fixtures of the Python tests: fixed times, and a transactional
pure-Python store (the reference host store of the tests)."""
from __future__ import annotations

import copy
import os
import tempfile
import threading
import unittest
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, Optional

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)


class TempDirCase(unittest.TestCase):
    """A test with its own temporary directory (removed afterwards) and
    self.path, a file named file_name in it."""
    file_name = "risk.sqlite"

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, self.file_name)

    def tearDown(self):
        self.dir.cleanup()


class DictStore:
    """A host store in Python (stores.HostStore): committed dicts, and per
    transaction a copy-on-begin working set swapped in at commit. One lock
    serialises transactions (store.h allows a store to serialise inside)."""

    def __init__(self) -> None:
        self.data: Dict[str, Dict[Any, Any]] = {k: {} for k in
                                                ("users", "events", "policies", "history",
                                                 "meta")}
        self.seq = 0
        self.lock = threading.RLock()
        self.closed = False

    def snapshot(self) -> Any:
        return copy.deepcopy((self.data, self.seq))

    def begin(self, user_id: Optional[str]) -> Any:
        self.lock.acquire()
        return {"data": copy.deepcopy(self.data), "seq": self.seq}

    def commit(self, txn: Any) -> None:
        try:
            self.data, self.seq = txn["data"], txn["seq"]
        finally:
            self.lock.release()

    def rollback(self, txn: Any) -> None:
        self.lock.release()

    def get_user(self, txn: Any, id: str) -> Optional[bytes]:
        rec = txn["data"]["users"].get(id)
        return rec[1] if rec else None

    def put_user(self, txn: Any, user: Any) -> None:
        txn["data"]["users"][user.id] = (user.level, user.data, user.version)

    def get_event(self, txn: Any, id: str) -> Optional[bytes]:
        rec = txn["data"]["events"].get(id)
        return rec[1] if rec else None

    def put_event(self, txn: Any, event: Any) -> None:
        txn["data"]["events"][event.id] = (event.user_id, event.data)

    def user_events(self, txn: Any, user_id: str) -> Iterable[bytes]:
        return [d for (u, d) in txn["data"]["events"].values() if u == user_id]

    def reserve_seq(self, txn: Any) -> int:
        txn["seq"] += 1
        return txn["seq"]

    def append_history(self, txn: Any, item: Any) -> None:
        txn["data"]["history"][item.seq] = (item.user_id, item.data)

    def list_policies(self, txn: Any) -> Iterable[bytes]:
        return list(txn["data"]["policies"].values())

    def put_policy(self, txn: Any, policy: Any) -> None:
        txn["data"]["policies"][policy.name] = policy.data

    def remove_policy(self, txn: Any, name: str) -> bool:
        return txn["data"]["policies"].pop(name, None) is not None

    def get_meta(self, txn: Any, key: str) -> Optional[bytes]:
        return txn["data"]["meta"].get(key)

    def put_meta(self, txn: Any, key: str, value: bytes) -> None:
        txn["data"]["meta"][key] = value

    def close(self) -> None:
        self.closed = True


class FullDictStore(DictStore):
    """DictStore with the optional committed-read callbacks."""

    def view_user(self, id: str) -> Optional[bytes]:
        rec = self.data["users"].get(id)
        return rec[1] if rec else None

    def list_users(self, min_level: Any) -> Iterable[bytes]:
        return [d for (lvl, d, _v) in self.data["users"].values() if lvl >= min_level]

    def read_history(self, user_id: Optional[str], since_seq: int) -> Iterable[bytes]:
        return [d for s, (u, d) in sorted(self.data["history"].items())
                if s >= since_seq and (user_id is None or u == user_id)]
