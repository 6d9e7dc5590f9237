"""librisk: identity-risk state of user accounts, over the C library.

    >>> from datetime import datetime, timezone
    >>> import librisk
    >>> now = datetime.now(timezone.utc)
    >>> with librisk.Engine.memory(actor="admin") as engine:
    ...     engine.ingest("alice", "ev1", "leakedCredentials", "high", now)
    ...     _ = engine.set_policy("high-risk", "high", "block")
    ...     engine.sign_in("alice").decision
    <Decision.BLOCK: 'block'>

See README.md beside this package for a tour.
"""
from __future__ import annotations

from ._ffi import lib as _lib
from .engine import Engine
from .errors import (AlreadyExists, BufferTooSmall, Busy, Conflict, Corrupt, InvalidArgument,
                     MfaNotRegistered, NotFound, OutOfMemory, ReadOnly, RiskError, StoreError,
                     StoreIOError, TransitionError, Unsupported, UserDeleted, VerificationError)
from .stores import HostStore, SQLiteStore
from .types import (Action, Anchor, CloseReason, Control, Decision, DismissResult, Durability,
                    Event, EventState, Explanation, ExplanationItem, HistoryAction, HistoryItem,
                    IngestResult, Level, Policy, PolicyMode, Reason, ReportOnly, RiskDetail,
                    RiskState, Scoring, Timing, User, Verdict, WhatIf, explain, transition)

__version__ = "0.1.0"

__all__ = [
    "version", "version_number", "Engine", "HostStore", "SQLiteStore",
    "Level", "EventState", "CloseReason", "Timing", "RiskState", "RiskDetail", "PolicyMode",
    "Control", "Decision", "Reason", "HistoryAction",
    "User", "Event", "Policy", "Verdict", "ReportOnly", "HistoryItem", "Explanation",
    "ExplanationItem", "DismissResult", "IngestResult", "Scoring", "Anchor", "WhatIf", "Durability",
    "Action", "transition", "explain",
    "RiskError", "InvalidArgument", "OutOfMemory", "NotFound", "AlreadyExists",
    "TransitionError", "MfaNotRegistered", "UserDeleted", "Busy", "Corrupt", "StoreIOError",
    "Unsupported", "Conflict", "BufferTooSmall", "ReadOnly", "StoreError", "VerificationError",
]


def version() -> str:
    """The release of the loaded C library, e.g. "0.1.0"."""
    return _lib.risk_version_string().decode()


def version_number() -> int:
    """The release of the loaded C library as major*10000 + minor*100 + patch."""
    return int(_lib.risk_version_number())
