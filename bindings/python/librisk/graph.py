"""Import a Microsoft Graph ``riskDetection`` export (SPEC §5 interop).

Input: a JSON object with a ``value`` array (what Graph returns), a bare
array, or JSON lines. Mapping: ``id`` → event id; ``userId`` (or, with
``user_key="userPrincipalName"``, that) → user id; ``riskEventType`` → type;
``riskLevel`` → level; ``detectedDateTime`` → detected_at;
``detectionTimingType`` → timing; ``ipAddress``, ``source``; ``location`` as
"city, state, countryOrRegion".

A detection whose ``riskState`` is closed is ingested and then closed the
matching way by actor ``graph-import``: ``confirmedSafe`` → false positive
(that event only); ``remediated`` → a secure password change (a reset when
``riskDetail`` says so) or, where librisk does not count the user's MFA for
it (R-PO-11), a temporary password followed by a change, so the events
still close as remediated; ``dismissed`` → dismiss all. Graph's closings are
user-wide, so per user the closed detections are replayed first and the
still-active ones last; a remediation or dismissal also closes events of the
user that were already active in the store, as it did in Graph.

Levels ``none``, ``hidden`` and unknown values (and unknown states) are
reported and skipped, never guessed. Events already in the store are left
alone, so a re-import changes nothing.
"""
from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .engine import Engine
from .errors import NotFound, RiskError
from .types import Level, Timing

__all__ = ["ImportSummary", "import_graph", "read_detections"]

ACTOR = "graph-import"
_LEVELS = {"low": Level.LOW, "medium": Level.MEDIUM, "high": Level.HIGH}
_ACTIVE_STATES = {"none", "atRisk", "confirmedCompromised"}
_CLOSED_STATES = ("confirmedSafe", "remediated", "dismissed")  # replay order
_ISO = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


@dataclass
class ImportSummary:
    """What an import did: events added, closings by reason, events already
    present, and every skipped detection with why."""
    added: int = 0
    closed: Dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"added {self.added}, unchanged {self.unchanged}, skipped {len(self.skipped)}"]
        for reason, n in sorted(self.closed.items()):
            lines.append(f"closed as {reason}: {n}")
        for ref, why in self.skipped:
            lines.append(f"skipped {ref}: {why}")
        lines += self.notes
        return "\n".join(lines)


@dataclass(frozen=True)
class _Detection:
    id: str
    user_id: str
    type: str
    level: Level
    detected_at: datetime
    timing: Timing
    ip: Optional[str]
    location: Optional[str]
    source: Optional[str]
    state: str
    detail: str


def parse_time(text: str) -> datetime:
    """Graph timestamps: ISO 8601 with up to 7 fractional digits and 'Z'."""
    m = _ISO.match(text.strip())
    if not m:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    base, frac, tz = m.groups()
    frac = (frac or ".0")[1:][:6].ljust(6, "0")
    tz = "+00:00" if tz in (None, "Z") else tz
    return datetime.fromisoformat(f"{base}.{frac}{tz}").astimezone(timezone.utc)


def read_detections(source: Union[str, "os.PathLike[str]", io.TextIOBase, Iterable[Mapping]]
                    ) -> List[Any]:
    """The detections of an export: a ``value`` array, an array, or JSON lines.
    A line that is not JSON yields a string (reported as skipped)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8-sig") as f:
            text = f.read()
    elif hasattr(source, "read"):
        text = source.read()  # type: ignore[union-attr]
    else:
        return list(source)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        out: List[Any] = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    out.append(f"line {n}: not JSON ({exc.msg})")
        return out
    if isinstance(doc, dict) and isinstance(doc.get("value"), list):
        return doc["value"]
    return doc if isinstance(doc, list) else [doc]


def _location(loc: Any) -> Optional[str]:
    if not isinstance(loc, dict):
        return None
    parts = [str(loc[k]) for k in ("city", "state", "countryOrRegion") if loc.get(k)]
    return ", ".join(parts) or None


def _map(d: Any, user_key: str) -> _Detection:
    if not isinstance(d, dict):
        raise ValueError(d if isinstance(d, str) else "not a JSON object")
    for key in ("id", user_key, "riskEventType", "riskLevel", "detectedDateTime"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise ValueError(f"missing {key}")
    level = _LEVELS.get(d["riskLevel"])
    if level is None:
        raise ValueError(f"riskLevel {d['riskLevel']!r} is not low, medium or high")
    state = d.get("riskState") or "none"
    if state not in _ACTIVE_STATES and state not in _CLOSED_STATES:
        raise ValueError(f"riskState {state!r} is unknown")
    return _Detection(
        id=d["id"], user_id=d[user_key], type=d["riskEventType"], level=level,
        detected_at=parse_time(d["detectedDateTime"]),
        timing=Timing.OFFLINE if d.get("detectionTimingType") == "offline" else Timing.REALTIME,
        ip=d.get("ipAddress") or None, location=_location(d.get("location")),
        source=d.get("source") or None, state=state, detail=d.get("riskDetail") or "none")


def import_graph(engine: Engine, source: Any, *, user_key: str = "userId",
                 actor: str = ACTOR) -> ImportSummary:
    """Ingest a Graph riskDetection export into ``engine``; see the module doc."""
    if user_key not in ("userId", "userPrincipalName"):
        raise ValueError("user_key: userId or userPrincipalName")
    summary = ImportSummary()
    by_user: Dict[str, List[_Detection]] = {}
    seen = set()
    for n, raw in enumerate(read_detections(source), 1):
        ref = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"#{n}"
        try:
            det = _map(raw, user_key)
        except ValueError as exc:
            summary.skipped.append((ref, str(exc)))
            continue
        if det.id in seen:
            summary.skipped.append((ref, "duplicate id in the input"))
            continue
        seen.add(det.id)
        try:
            old = engine.event(det.id)
        except NotFound:
            by_user.setdefault(det.user_id, []).append(det)
            continue
        except RiskError as exc:  # e.g. an id librisk refuses
            summary.skipped.append((ref, str(exc)))
            continue
        if old.user_id != det.user_id:
            summary.skipped.append((ref, f"event id already used for user {old.user_id!r}"))
        else:
            summary.unchanged += 1
    for user_id, dets in by_user.items():
        dets.sort(key=lambda d: (d.detected_at, d.id))
        for state in _CLOSED_STATES + ("active",):
            group = [d for d in dets if (d.state == state if state != "active"
                                         else d.state in _ACTIVE_STATES)]
            ingested = [d for d in group if _ingest(engine, d, actor, summary)]
            if ingested and state != "active":
                _close(engine, user_id, state, ingested, actor, summary)
    return summary


def _ingest(engine: Engine, d: _Detection, actor: str, summary: ImportSummary) -> bool:
    try:
        engine.ingest(d.user_id, d.id, d.type, d.level, d.detected_at, timing=d.timing,
                      ip=d.ip, location=d.location, source=d.source, actor=actor)
    except RiskError as exc:
        summary.skipped.append((d.id, str(exc)))
        return False
    summary.added += 1
    return True


def _count(summary: ImportSummary, reason: str, n: int) -> None:
    if n:
        summary.closed[reason] = summary.closed.get(reason, 0) + n


def _close(engine: Engine, user_id: str, state: str, dets: List[_Detection], actor: str,
           summary: ImportSummary) -> None:
    note = f"Microsoft Graph riskState {state}"
    try:
        if state == "confirmedSafe":
            for d in dets:
                engine.mark_false_positive(d.id, note=note, actor=actor)
            _count(summary, "false_positive", len(dets))
        elif state == "dismissed":
            engine.dismiss(user_id, note=note, actor=actor)
            _count(summary, "dismissed", len(dets))
        else:
            reset = any(d.detail == "userPerformedSecuredPasswordReset" for d in dets)
            engine.password_changed(user_id, secure=True, reset=reset, actor=actor)
            if any(engine.event(d.id).active for d in dets):
                # R-PO-11: librisk does not count this user's MFA; Graph says the
                # password was replaced, so remediate as an admin would.
                engine.generate_temporary_password(user_id, actor=actor)
                engine.password_changed(user_id, secure=False, actor=actor)
                summary.notes.append(f"user {user_id!r}: remediated through a temporary "
                                     "password (MFA not counted for self-remediation, R-PO-11)")
            _count(summary, "remediated", len(dets))
    except RiskError as exc:
        summary.notes.append(f"user {user_id!r}: closing as {state} failed: {exc}")
