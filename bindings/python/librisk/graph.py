"""Import a Microsoft Graph ``riskDetection`` export (SPEC §5 interop).

Input: one or more Graph list responses (pages: objects with a ``value``
array, one after the other or one per line, or an array of them), a bare
array of detections, or JSON lines; ``python3 -m librisk import-graph``
takes several files, or a directory (its ``*.json``/``*.jsonl`` in name
order). Input that is not JSON (a truncated download), a Graph error
response, or a ``value`` that is not an array is refused before anything
is imported; a page carrying ``@odata.nextLink`` is noted (pages missing).

Mapping: ``id`` → event id; ``userId`` (or, with
``user_key="userPrincipalName"``, that: not stable across renames nor
case-normalised, so one person may become several users; a note says so)
→ user id; ``riskEventType`` → type; ``riskLevel`` → level;
``detectedDateTime`` → detected_at; ``detectionTimingType`` ``offline`` →
offline, any other value → realtime; ``ipAddress``, ``source``;
``location`` as "city, state, countryOrRegion". Imported users are not
MFA-registered (detections do not say). The same detection twice: the
copy with the latest ``lastUpdatedDateTime`` counts (the later one on a
tie).

States: ``atRisk``, ``none`` and ``confirmedCompromised`` are active; a
user with a ``confirmedCompromised`` detection is then confirmed
compromised (R-US-3). A closed detection is ingested and closed by actor
``graph-import``, the closings of a user replayed in the order of their
``lastUpdatedDateTime``: ``confirmedSafe`` → false positive (that event);
a per-detection closing (``riskDetail`` ``userPassedMFADrivenByRiskBasedPolicy``,
``adminConfirmedSigninSafe``, ``aiConfirmedSigninSafe``,
``adminDismissedRiskForSignIn``, ``m365DAdminDismissedDetection``) →
resolved (that event; librisk has no per-event dismiss); ``dismissed`` →
dismiss all; ``remediated`` → a temporary password for
``adminGeneratedTemporaryPassword``, else a secure password change (a
reset when ``riskDetail`` says so) or, where librisk does not count the
user's MFA for it (R-PO-11), a temporary password followed by a change,
so the events still close as remediated. A user-wide closing is replayed
only when it closes no event that the input reports still active; else
the detections Graph closed are resolved one by one. Active detections
are ingested after the closings. The history records these replayed
operations at the time of the import.

Levels ``none``, ``hidden`` and unknown values (and unknown states) are
reported and skipped, never guessed. A detection already in the store is
left alone unless it is active there and the input reports it closed: it
is then closed as above, so a re-import brings later Graph states in and
an identical re-import changes nothing. The summary's ``ok`` is false
(and the command exits 1) when a detection was skipped or a closing
failed.
"""
from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple, Union

from .engine import Engine
from .errors import NotFound, RiskError
from .types import Level, RiskState, Timing

__all__ = ["ImportSummary", "import_graph", "read_detections", "read_files"]

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
    failed: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing was skipped and no closing failed."""
        return not self.skipped and not self.failed

    def __str__(self) -> str:
        lines = [f"added {self.added}, unchanged {self.unchanged}, skipped {len(self.skipped)}"]
        for reason, n in sorted(self.closed.items()):
            lines.append(f"closed as {reason}: {n}")
        for ref, why in self.skipped:
            lines.append(f"skipped {ref}: {why}")
        lines += self.notes + self.failed
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
    updated: str = ""


def parse_time(text: str) -> datetime:
    """Graph timestamps: ISO 8601 with up to 7 fractional digits and 'Z'."""
    m = _ISO.match(text.strip())
    if not m:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    base, frac, tz = m.groups()
    frac = (frac or ".0")[1:][:6].ljust(6, "0")
    tz = "+00:00" if tz in (None, "Z") else tz
    return datetime.fromisoformat(f"{base}.{frac}{tz}").astimezone(timezone.utc)


def read_files(paths: Iterable[Union[str, "os.PathLike[str]"]],
               notes: Optional[List[str]] = None) -> List[Any]:
    """The detections of several files (pages of one export, in order), as
    :func:`read_detections` reads each; only the last file's open end
    (``@odata.nextLink``) is noted."""
    out: List[Any] = []
    last: List[str] = []
    for path in paths:
        last = []
        out += read_detections(path, last)
    if notes is not None:
        notes += last
    return out


def read_detections(source: Union[str, "os.PathLike[str]", io.TextIOBase, Iterable[Mapping]],
                    notes: Optional[List[str]] = None) -> List[Any]:
    """The detections of an export: one or more Graph list responses (pages,
    concatenated or one per line), arrays, or JSON lines of detections. A
    directory means its ``*.json``/``*.jsonl`` files in name order. Input that
    is not JSON at all, or a JSON object that is neither a page nor a
    detection (a Graph error response), raises ``ValueError``: nothing is
    imported. A page with ``@odata.nextLink`` adds a note (pages missing)."""
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        names = sorted(n for n in os.listdir(source) if n.endswith((".json", ".jsonl")))
        return read_files([os.path.join(source, n) for n in names], notes)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            data = f.read()
        for bom, enc in ((b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
            if data.startswith(bom):
                text = data.decode(enc)
                break
        else:
            text = data.decode("utf-8-sig")
        where = os.fspath(source)
    elif hasattr(source, "read"):
        text, where = source.read(), "input"  # type: ignore[union-attr]
    elif isinstance(source, Mapping):
        text, where = json.dumps(source), "input"
    else:  # detections (or pages) already decoded
        listed: List[Any] = []
        for x in source:
            page = isinstance(x, dict) and isinstance(x.get("value"), list)
            listed += x["value"] if page else [x]
        return listed
    dec, pos, docs = json.JSONDecoder(), int(text.startswith("\ufeff")), []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            break
        try:
            doc, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON at line {exc.lineno} column {exc.colno} "
                             f"({exc.msg}); truncated or damaged export, nothing "
                             "imported") from None
        docs.append(doc)
    out: List[Any] = []
    open_end = False  # the last page read has a next one
    for doc in docs:
        if isinstance(doc, dict) and "value" in doc:
            if not isinstance(doc["value"], list):
                raise ValueError(f"{where}: 'value' is not an array")
            out += doc["value"]
            open_end = bool(doc.get("@odata.nextLink"))
        elif isinstance(doc, dict) and "error" in doc and "id" not in doc:
            raise ValueError(f"{where}: a Microsoft Graph error response, not detections: "
                             f"{doc['error']!r:.200}")
        elif isinstance(doc, list):  # an array of detections, or of pages
            for x in doc:
                page = isinstance(x, dict) and isinstance(x.get("value"), list)
                out += x["value"] if page else [x]
        else:
            out.append(doc)
    if open_end and notes is not None:
        notes.append(f"{where}: its last page has @odata.nextLink: the export is "
                     "incomplete unless the next pages are imported too")
    return out


def _location(loc: Any) -> Optional[str]:
    if not isinstance(loc, dict):
        return None
    parts = [str(loc[k]) for k in ("city", "state", "countryOrRegion") if loc.get(k)]
    return ", ".join(parts) or None


def _map(d: Any, user_key: str) -> _Detection:
    if not isinstance(d, dict):
        raise ValueError(f"not a JSON object: {d!r:.60}")
    for key in ("id", user_key, "riskEventType", "riskLevel", "detectedDateTime"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise ValueError(f"missing {key}")
    for key in ("riskState", "riskDetail", "detectionTimingType", "ipAddress", "source"):
        if d.get(key) is not None and not isinstance(d[key], str):
            raise ValueError(f"{key} is not a string")
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
        source=d.get("source") or None, state=state, detail=d.get("riskDetail") or "none",
        updated=_updated(d))


def _updated(raw: Mapping) -> str:
    try:
        return parse_time(raw.get("lastUpdatedDateTime") or "").isoformat()
    except (ValueError, AttributeError):
        return ""


def import_graph(engine: Engine, source: Any, *, user_key: str = "userId",
                 actor: str = ACTOR) -> ImportSummary:
    """Ingest a Graph riskDetection export into ``engine``; see the module doc."""
    if user_key not in ("userId", "userPrincipalName"):
        raise ValueError("user_key: userId or userPrincipalName")
    summary = ImportSummary()
    raws = read_detections(source, summary.notes)
    latest: Dict[str, Tuple[str, int]] = {}
    for n, raw in enumerate(raws):  # the same detection twice: keep the last updated
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            key = (_updated(raw), n)
            if raw["id"] not in latest or key >= latest[raw["id"]]:
                latest[raw["id"]] = key
    by_user: Dict[str, List[_Detection]] = {}
    # every detection the input reports active, stored already or not: a
    # closing replayed user-wide must not close one of them
    input_active: Dict[str, Set[str]] = {}
    upns: Dict[str, Set[str]] = {}
    for n, raw in enumerate(raws):
        has_id = isinstance(raw, dict) and isinstance(raw.get("id"), str)
        ref = raw["id"] if has_id else f"#{n + 1}"
        if isinstance(raw, dict) and ref in latest and latest[ref][1] != n:
            summary.notes.append(f"{ref}: an older copy (lastUpdatedDateTime) superseded")
            continue
        try:
            det = _map(raw, user_key)
        except ValueError as exc:
            summary.skipped.append((ref, str(exc)))
            continue
        if det.state in _ACTIVE_STATES:
            input_active.setdefault(det.user_id, set()).add(det.id)
        if isinstance(raw.get("userId"), str) and isinstance(raw.get("userPrincipalName"), str):
            upns.setdefault(raw["userId"], set()).add(raw["userPrincipalName"])
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
        elif old.active and det.state in _CLOSED_STATES:
            by_user.setdefault(det.user_id, []).append(det)  # closed in Graph since: close it
        else:
            summary.unchanged += 1
    if user_key == "userPrincipalName":
        for uid, names in upns.items():
            if len(names) > 1:
                summary.notes.append(f"userId {uid}: several userPrincipalNames {sorted(names)} "
                                     "became different librisk users (use --user-key userId)")
    for user_id, dets in by_user.items():
        dets.sort(key=lambda d: (d.detected_at, d.id))
        active = [d for d in dets if d.state in _ACTIVE_STATES]
        still_active = input_active.get(user_id, set())
        closed = [d for d in dets if d.state in _CLOSED_STATES]
        # replay Graph's closings in the order they happened
        groups: Dict[Tuple[str, str], List[_Detection]] = {}
        for d in closed:
            groups.setdefault((d.state, d.detail), []).append(d)
        for (state, detail), group in sorted(groups.items(),
                                             key=lambda kv: max(d.updated for d in kv[1])):
            # stored already (maybe closed by an earlier closing of this
            # replay: then nothing is left to do for it), or ingested now
            there = [d for d in group if _stored(engine, d) or _ingest(engine, d, actor, summary)]
            still_open = [d for d in there if engine.event(d.id).active]
            if still_open:
                _close(engine, user_id, state, detail, still_open, still_active, actor, summary)
        for d in active:
            _ingest(engine, d, actor, summary)
        if any(d.state == "confirmedCompromised" for d in active):
            try:
                if engine.user(user_id).risk_state is not RiskState.CONFIRMED_COMPROMISED:
                    engine.confirm_compromised(user_id, actor=actor)
            except RiskError as exc:
                summary.failed.append(f"user {user_id!r}: confirm compromised failed: {exc}")
    return summary


def _stored(engine: Engine, d: _Detection) -> bool:
    try:
        engine.event(d.id)
        return True
    except NotFound:
        return False


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


_PER_DETECTION = {"userPassedMFADrivenByRiskBasedPolicy", "adminConfirmedSigninSafe",
                  "aiConfirmedSigninSafe", "adminDismissedRiskForSignIn",
                  "m365DAdminDismissedDetection"}


def _close(engine: Engine, user_id: str, state: str, detail: str, dets: List[_Detection],
           still_active: Set[str], actor: str, summary: ImportSummary) -> None:
    note = f"Microsoft Graph riskState {state} ({detail})"
    try:
        others = {e.id for e in engine.events(user_id, active_only=True)} - {d.id for d in dets}
        if state == "confirmedSafe":
            for d in dets:
                engine.mark_false_positive(d.id, note=note, actor=actor)
            _count(summary, "false_positive", len(dets))
        elif detail in _PER_DETECTION or others & still_active:
            # Graph closed these detections only (or others of the user are still
            # at risk in Graph): a user-wide closing here would close them too.
            for d in dets:
                engine.resolve(d.id, note=note, actor=actor)
            _count(summary, "resolved", len(dets))
        elif state == "dismissed":
            r = engine.dismiss(user_id, note=note, actor=actor)
            _count(summary, "dismissed", r.closed)
        elif detail == "adminGeneratedTemporaryPassword":
            engine.generate_temporary_password(user_id, actor=actor)
            engine.password_changed(user_id, secure=False, actor=actor)
            _count(summary, "remediated", len(dets) + len(others))
        else:
            engine.password_changed(user_id, secure=True,
                                    reset=detail == "userPerformedSecuredPasswordReset",
                                    actor=actor)
            if any(engine.event(d.id).active for d in dets):
                engine.generate_temporary_password(user_id, actor=actor)
                engine.password_changed(user_id, secure=False, actor=actor)
                summary.notes.append(f"user {user_id!r}: remediated through a temporary "
                                     "password (MFA not counted for self-remediation, R-PO-11)")
            _count(summary, "remediated", len(dets) + len(others))
    except RiskError as exc:
        summary.failed.append(f"user {user_id!r}: closing as {state} failed: {exc}")
