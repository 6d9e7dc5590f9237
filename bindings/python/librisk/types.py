"""Enumerations and read-only records.

Enum values are the SPEC's lower-snake spellings; their C numbers come from
the library itself (``risk_enum_parse``), so the two can never drift apart.
Every method that takes an enum accepts a member or its string.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, Iterable, Mapping, Optional, Tuple, Type, TypeVar, Union

from ._ffi import TIME_MAX, TIME_NONE, lib
from .errors import InvalidArgument, RiskError

__all__ = [
    "Level", "EventState", "CloseReason", "Timing", "RiskState", "RiskDetail", "PolicyMode",
    "Control", "Decision", "Reason", "HistoryAction", "User", "Event", "Policy", "Verdict",
    "ReportOnly", "HistoryItem", "Explanation", "ExplanationItem", "DismissResult", "Scoring",
    "Anchor", "WhatIf", "Durability", "Action", "transition",
]


# ---------------------------------------------------------------- times

def to_ms(when: datetime, what: str = "time") -> int:
    """Aware datetime → ms since the epoch. Naive datetimes are refused: a
    risk timeline in an unknown time zone is a bug waiting to happen. The
    library keeps milliseconds: microseconds are cut (``.999999`` →
    ``.999``), never rounded up into the next millisecond."""
    if not isinstance(when, datetime):
        raise InvalidArgument(-1, f"{what}: expected an aware datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidArgument(-1, f"{what}: naive datetime; give a time zone (e.g. timezone.utc)")
    delta = when - datetime(1970, 1, 1, tzinfo=timezone.utc)
    ms = delta // timedelta(milliseconds=1)
    if not 0 <= ms < TIME_MAX:
        raise InvalidArgument(-1, f"{what}: out of range (1970 … 2^53 ms)")
    return ms


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: The last millisecond ``datetime`` can hold (year 9999); the library's
#: times go on to 2^53 ms (year 287396).
_PY_MAX_MS = (datetime.max.replace(tzinfo=timezone.utc) - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> Optional[datetime]:
    """ms since the epoch → aware UTC datetime; RISK_TIME_NONE → None. A
    time past year 9999, which ``datetime`` cannot hold, reads as
    ``datetime.max`` (UTC), so such a record stays readable."""
    if ms == TIME_NONE or ms < 0:
        return None
    if ms > _PY_MAX_MS:
        return datetime.max.replace(tzinfo=timezone.utc)
    return _EPOCH + timedelta(milliseconds=ms)


def _by_level(values: Iterable[int], what: str) -> Iterable[Tuple[int, str]]:
    """(value, level name) for a (low, medium, high) triple."""
    try:
        triple = tuple(values)
    except TypeError:
        raise InvalidArgument(-1, f"scoring.{what}: expected (low, medium, high)") from None
    if len(triple) != 3:
        raise InvalidArgument(-1, f"scoring.{what}: expected 3 values (low, medium, high), "
                                  f"got {len(triple)}")
    return zip(triple, ("low", "medium", "high"))


def _ms_span(period: Optional[timedelta]) -> int:
    if period is None:
        return 0
    if isinstance(period, bool) or not isinstance(period, (int, float, timedelta)):
        raise InvalidArgument(-1, "aging: expected a timedelta (or days), got "
                                  f"{type(period).__name__}")
    if isinstance(period, (int, float)):
        period = timedelta(days=period)
    ms = period // timedelta(milliseconds=1)
    if ms < 0:
        raise InvalidArgument(-1, "aging: negative period")
    if ms == 0 and period:
        # 0 is "never ages": a period under a millisecond must not become it
        raise InvalidArgument(-1, f"aging: {period} is under the library's 1 ms resolution")
    return ms


# ---------------------------------------------------------------- enums

E = TypeVar("E", bound=enum.Enum)


class _Kind(enum.IntEnum):
    """risk_enum_kind."""
    LEVEL = 0
    EVENT_STATE = 1
    CLOSE_REASON = 2
    ACTION = 3
    TIMING = 4
    STATE = 5
    DETAIL = 6
    POLICY_MODE = 7
    CONTROL = 8
    DECISION = 9
    REASON = 10
    PASSWORD_CHANGE = 11
    HISTORY_ACTION = 12
    DETAIL_GRAPH = 13


class Level(enum.IntEnum):
    """A risk level; ordered, so ``Level.HIGH > Level.LOW``."""
    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @classmethod
    def parse(cls, value: Union["Level", str, int], what: str = "level") -> "Level":
        """A member from a member, its number or its name ("high", "HIGH");
        ``what`` names the argument in the error."""
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise InvalidArgument(-1, f"{what}: unknown level {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(-1, f"{what}: expected a Level, its name or number, got "
                                      f"{type(value).__name__}")
        try:
            return cls(value)
        except ValueError:
            raise InvalidArgument(-1, f"{what}: unknown level {value!r}") from None

    def __str__(self) -> str:
        return self.name.lower()


class _Named(str, enum.Enum):
    """An enum whose values are the SPEC spellings, mapped to C by the library.
    A member is also its spelling: ``RiskState.AT_RISK == "at_risk"``."""
    _kind_: _Kind

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def parse(cls: Type[E], value: Union[E, str], what: Optional[str] = None) -> E:
        """A member from a member or its spelling ("at_risk" or "AT_RISK");
        ``what`` names the argument in the error (default: the enum)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                try:
                    return cls[value.upper()]
                except KeyError:
                    pass
        raise InvalidArgument(-1, f"{what or cls.__name__}: unknown value {value!r}")


def _bind(cls: Type[_Named], kind: _Kind) -> None:
    """Give each member its C number via risk_enum_parse (and check the
    library knows every spelling), and build the reverse table."""
    import ctypes
    to_c: Dict[_Named, int] = {}
    from_c: Dict[int, _Named] = {}
    for member in cls:
        out = ctypes.c_uint32()
        rc = lib.risk_enum_parse(int(kind), member.value.encode(), ctypes.byref(out))
        if rc != 0:
            raise ImportError(f"librisk: the library does not know {cls.__name__} "
                              f"{member.value!r}; package and library are out of sync")
        to_c[member] = out.value
        from_c[out.value] = member
    cls._to_c_ = to_c  # type: ignore[attr-defined]
    cls._from_c_ = from_c  # type: ignore[attr-defined]


def c_value(cls: Type[_Named], value: object, what: Optional[str] = None) -> int:
    return cls._to_c_[cls.parse(value, what)]  # type: ignore[attr-defined]


def py_value(cls: Type[E], number: int) -> E:
    try:
        return cls._from_c_[number]  # type: ignore[attr-defined]
    except KeyError:
        raise RiskError(-9, f"{cls.__name__}: unknown value {number} from the library") from None


class EventState(_Named):
    ACTIVE = "active"
    CLOSED = "closed"


class CloseReason(_Named):
    NONE = "none"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"
    IGNORED = "ignored"
    DISMISSED = "dismissed"
    REMEDIATED = "remediated"
    AGED = "aged"


class Action(_Named):
    """What can be done to one event (the state machine's inputs, SPEC §3)."""
    RESOLVE = "resolve"
    FALSE_POSITIVE = "false_positive"
    IGNORE = "ignore"
    DISMISS = "dismiss"
    REMEDIATE = "remediate"
    AGE = "age"
    REACTIVATE = "reactivate"


class Durability(str, enum.Enum):
    """When a journal commit returns (``Engine.open``): ``FULL`` once its
    bytes are on the disk; ``NORMAL`` at once, synced in the background
    (a crash loses at most the last interval, never consistency); ``OFF``
    never synced (tests, bulk loads). Its spelling is accepted too:
    ``Durability.FULL == "full"``."""
    FULL = "full"
    NORMAL = "normal"
    OFF = "off"

    def __str__(self) -> str:
        return str(self.value)


class Timing(_Named):
    REALTIME = "realtime"
    OFFLINE = "offline"


class RiskState(_Named):
    NONE = "none"
    AT_RISK = "at_risk"
    REMEDIATED = "remediated"
    DISMISSED = "dismissed"
    CONFIRMED_SAFE = "confirmed_safe"
    CONFIRMED_COMPROMISED = "confirmed_compromised"


class RiskDetail(_Named):
    NONE = "none"
    ADMIN_GENERATED_TEMPORARY_PASSWORD = "admin_generated_temporary_password"
    USER_PERFORMED_SECURED_PASSWORD_CHANGE = "user_performed_secured_password_change"
    USER_PERFORMED_SECURED_PASSWORD_RESET = "user_performed_secured_password_reset"
    ADMIN_DISMISSED_ALL_RISK = "admin_dismissed_all_risk"
    ADMIN_CONFIRMED_COMPROMISED = "admin_confirmed_compromised"
    ADMIN_CONFIRMED_SAFE = "admin_confirmed_safe"
    ADMIN_CLOSED_EVENTS = "admin_closed_events"
    AGED_OUT = "aged_out"

    @property
    def graph(self) -> str:
        """The Microsoft Graph ``riskDetail`` spelling (SPEC §5)."""
        raw = lib.risk_enum_name(int(_Kind.DETAIL_GRAPH), c_value(RiskDetail, self))
        return raw.decode() if raw else self.value


class PolicyMode(_Named):
    OFF = "off"
    ON = "on"
    REPORT_ONLY = "report_only"


class Control(_Named):
    REQUIRE_PASSWORD_CHANGE = "require_password_change"
    BLOCK = "block"


class Decision(_Named):
    ALLOW = "allow"
    REQUIRE_PASSWORD_CHANGE = "require_password_change"
    BLOCK = "block"


class Reason(_Named):
    NONE = "none"
    RISK_LEVEL = "risk_level"
    NOT_MFA_REGISTERED = "not_mfa_registered"
    MFA_REGISTERED_DURING_RISK = "mfa_registered_during_risk"
    TEMPORARY_PASSWORD = "temporary_password"
    RESET_REQUIRED = "reset_required"
    USER_DELETED = "user_deleted"
    STORE_ERROR = "store_error"


class PasswordChange(_Named):
    SECURE_CHANGE = "secure_change"
    SECURE_RESET = "secure_reset"
    INSECURE = "insecure"


class HistoryAction(_Named):
    INGEST = "ingest"
    EVENT_UPDATED = "event_updated"
    USER_UPSERT = "user_upsert"
    RESOLVE = "resolve"
    FALSE_POSITIVE = "false_positive"
    IGNORE = "ignore"
    REACTIVATE = "reactivate"
    DISMISS_ALL = "dismiss_all"
    SECURE_PASSWORD_CHANGE = "secure_password_change"
    SECURE_PASSWORD_RESET = "secure_password_reset"
    INSECURE_PASSWORD_CHANGE = "insecure_password_change"
    TEMPORARY_PASSWORD = "temporary_password"
    REQUIRE_RESET = "require_reset"
    CONFIRM_COMPROMISED = "confirm_compromised"
    CONFIRM_SAFE = "confirm_safe"
    AGE = "age"
    POLICY_SET = "policy_set"
    POLICY_REMOVE = "policy_remove"


for _cls, _kind in ((EventState, _Kind.EVENT_STATE), (CloseReason, _Kind.CLOSE_REASON),
                    (Action, _Kind.ACTION),
                    (Timing, _Kind.TIMING), (RiskState, _Kind.STATE),
                    (RiskDetail, _Kind.DETAIL), (PolicyMode, _Kind.POLICY_MODE),
                    (Control, _Kind.CONTROL), (Decision, _Kind.DECISION),
                    (Reason, _Kind.REASON), (PasswordChange, _Kind.PASSWORD_CHANGE),
                    (HistoryAction, _Kind.HISTORY_ACTION)):
    _bind(_cls, _kind)


def transition(state: Union[EventState, str], reason: Union[CloseReason, str],
               action: Union[Action, str]) -> Tuple[EventState, CloseReason]:
    """The event state machine as a pure function (R-EV-6): the state and
    close reason after ``action``, without an engine or a store. Raises
    ``TransitionError`` when the machine forbids it (R-EV-4, R-EV-5) and
    ``InvalidArgument`` for an inconsistent pair, e.g. active with a reason.
    R-EV-7 (detected before the last remediation) needs the user: the
    engine checks it."""
    import ctypes
    st, rs = ctypes.c_int(), ctypes.c_int()
    lib.risk_transition(c_value(EventState, state, "state"),
                        c_value(CloseReason, reason, "reason"),
                        c_value(Action, action, "action"), ctypes.byref(st), ctypes.byref(rs))
    return py_value(EventState, st.value), py_value(CloseReason, rs.value)


def explain(events: Iterable["Event"], at: datetime,
            scoring: Optional["Scoring"] = None) -> "Explanation":
    """Score ``events`` at ``at`` as the engine scores a user's events, and
    say why (R-SC-1…8, R-SC-6), as a pure function: no engine, no store,
    nothing changes. The events need not be stored; closed ones are shown
    and not counted. ``scoring`` defaults to the engine's defaults."""
    import ctypes
    handles = []
    try:
        for e in events:
            if not isinstance(e, Event):
                raise InvalidArgument(-1, "events: expected Event objects, got "
                                          f"{type(e).__name__}")
            handles.append(_event_handle(e))
        s, _keep = scoring._to_c() if scoring is not None else (None, None)
        arr = (ctypes.c_void_p * max(1, len(handles)))(*handles)
        out = ctypes.c_void_p()
        lib.risk_explain(ctypes.byref(out), ctypes.byref(s) if s is not None else None,  # type: ignore[arg-type]
                         arr, len(handles), to_ms(at, "at"))
        try:
            return Explanation._from_handle(out.value)  # type: ignore[arg-type]
        finally:
            lib.risk_explanation_free(out)
    finally:
        for h in handles:
            lib.risk_event_free(h)


def _event_handle(e: "Event") -> int:
    """A C event with every field of ``e`` (the caller frees it)."""
    import ctypes
    from ._ffi import enc
    out = ctypes.c_void_p()
    lib.risk_event_new(ctypes.byref(out), enc(e.id, "event.id"), enc(e.user_id, "event.user_id"),
                       enc(e.type, "event.type"), int(Level.parse(e.level, "event.level")),
                       to_ms(e.detected_at, "event.detected_at"))
    try:
        lib.risk_event_set_timing(out, c_value(Timing, e.timing, "event.timing"))
        for setter, value, what in ((lib.risk_event_set_ip, e.ip, "ip"),
                                    (lib.risk_event_set_location, e.location, "location"),
                                    (lib.risk_event_set_source, e.source, "source"),
                                    (lib.risk_event_set_note, e.note, "note")):
            if value is not None:
                setter(out, enc(value, "event." + what))
        state = c_value(EventState, e.state, "event.state")
        if state != c_value(EventState, EventState.ACTIVE) or e.closed_at is not None:
            lib.risk_event_set_closing(
                out, state, c_value(CloseReason, e.close_reason, "event.close_reason"),
                TIME_NONE if e.closed_at is None else to_ms(e.closed_at, "event.closed_at"),
                enc(e.closed_by, "event.closed_by"))
    except BaseException:
        lib.risk_event_free(out)
        raise
    return out.value  # type: ignore[return-value]


def _s(raw: Optional[bytes]) -> Optional[str]:
    return raw.decode("utf-8") if raw is not None else None


# ---------------------------------------------------------------- records

@dataclass(frozen=True)
class User:
    """A user account and its derived risk fields (SPEC §2)."""
    id: str
    mfa_registered: bool = False
    mfa_registered_at: Optional[datetime] = None
    deleted: bool = False
    must_change_password: bool = False
    reset_required: bool = False
    remediated_at: Optional[datetime] = None
    risk_level: Level = Level.NONE
    risk_state: RiskState = RiskState.NONE
    risk_detail: RiskDetail = RiskDetail.NONE
    risk_updated_at: Optional[datetime] = None
    score: int = 0
    risk_since: Optional[datetime] = None
    next_change_at: Optional[datetime] = None
    active_events: int = 0

    @classmethod
    def _from_handle(cls, h: int) -> "User":
        return cls(
            id=_s(lib.risk_user_id(h)) or "",
            mfa_registered=bool(lib.risk_user_mfa_registered(h)),
            mfa_registered_at=from_ms(lib.risk_user_mfa_registered_at(h)),
            deleted=bool(lib.risk_user_deleted(h)),
            must_change_password=bool(lib.risk_user_must_change_password(h)),
            reset_required=bool(lib.risk_user_reset_required(h)),
            remediated_at=from_ms(lib.risk_user_remediated_at(h)),
            risk_level=Level(lib.risk_user_risk_level(h)),
            risk_state=py_value(RiskState, lib.risk_user_risk_state(h)),
            risk_detail=py_value(RiskDetail, lib.risk_user_risk_detail(h)),
            risk_updated_at=from_ms(lib.risk_user_risk_updated_at(h)),
            score=lib.risk_user_score(h),
            risk_since=from_ms(lib.risk_user_risk_since(h)),
            next_change_at=from_ms(lib.risk_user_next_change_at(h)),
            active_events=lib.risk_user_active_events(h))


@dataclass(frozen=True)
class Event:
    """A risk event (detection) and its closing (SPEC §2, §3)."""
    id: str
    user_id: str
    type: str
    level: Level
    detected_at: datetime
    timing: Timing = Timing.REALTIME
    ip: Optional[str] = None
    location: Optional[str] = None
    source: Optional[str] = None
    state: EventState = EventState.ACTIVE
    close_reason: CloseReason = CloseReason.NONE
    closed_at: Optional[datetime] = None
    closed_by: Optional[str] = None
    note: Optional[str] = None

    @property
    def active(self) -> bool:
        return self.state is EventState.ACTIVE

    @classmethod
    def _from_handle(cls, h: int) -> "Event":
        return cls(
            id=_s(lib.risk_event_id(h)) or "", user_id=_s(lib.risk_event_user_id(h)) or "",
            type=_s(lib.risk_event_type(h)) or "", level=Level(lib.risk_event_level(h)),
            detected_at=from_ms(lib.risk_event_detected_at(h)),  # type: ignore[arg-type]
            timing=py_value(Timing, lib.risk_event_timing(h)),
            ip=_s(lib.risk_event_ip(h)), location=_s(lib.risk_event_location(h)),
            source=_s(lib.risk_event_source(h)),
            state=py_value(EventState, lib.risk_event_state_get(h)),
            close_reason=py_value(CloseReason, lib.risk_event_close_reason(h)),
            closed_at=from_ms(lib.risk_event_closed_at(h)),
            closed_by=_s(lib.risk_event_closed_by(h)), note=_s(lib.risk_event_note(h)))


def id_tuple(values: Iterable[str], what: str) -> Tuple[str, ...]:
    """A list of ids as a tuple. A lone ``str`` (or bytes) is refused: it is
    an iterable of str too, and would be split into one-letter ids."""
    if isinstance(values, (str, bytes, bytearray)):
        raise InvalidArgument(-1, f"{what}: expected a list of ids, got a single "
                                  f"{type(values).__name__} (write [{values!r}])")
    return tuple(values)


@dataclass(frozen=True)
class Policy:
    """A user risk policy. An empty ``include`` means all users; exclusion
    wins over inclusion (SPEC §2)."""
    name: str
    threshold: Level
    control: Control
    mode: PolicyMode = PolicyMode.ON
    include: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", Level.parse(self.threshold, "threshold"))
        object.__setattr__(self, "control", Control.parse(self.control, "control"))
        object.__setattr__(self, "mode", PolicyMode.parse(self.mode, "mode"))
        object.__setattr__(self, "include", id_tuple(self.include, "include"))
        object.__setattr__(self, "exclude", id_tuple(self.exclude, "exclude"))

    @classmethod
    def _from_handle(cls, h: int) -> "Policy":
        inc = tuple(_s(lib.risk_policy_include_at(h, i)) or ""
                    for i in range(lib.risk_policy_include_count(h)))
        exc = tuple(_s(lib.risk_policy_exclude_at(h, i)) or ""
                    for i in range(lib.risk_policy_exclude_count(h)))
        return cls(name=_s(lib.risk_policy_name(h)) or "",
                   threshold=Level(lib.risk_policy_threshold(h)),
                   control=py_value(Control, lib.risk_policy_control(h)),
                   mode=py_value(PolicyMode, lib.risk_policy_mode_get(h)),
                   include=inc, exclude=exc)


@dataclass(frozen=True)
class ReportOnly:
    """What a report-only policy would have decided (R-PO-4)."""
    policy: str
    decision: Decision
    reason: Reason


@dataclass(frozen=True)
class Verdict:
    """A sign-in decision (R-PO-5)."""
    user_id: str
    at: Optional[datetime]
    decision: Decision
    reason: Reason
    policy: Optional[str]
    level: Level
    report_only: Tuple[ReportOnly, ...] = ()
    #: The signed receipt (text) when asked for with ``sign_in(receipt=True)`` (R-RC-1).
    receipt: Optional[str] = None

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    @classmethod
    def _from_handle(cls, h: int) -> "Verdict":
        ro = tuple(ReportOnly(_s(lib.risk_verdict_report_only_policy(h, i)) or "",
                              py_value(Decision, lib.risk_verdict_report_only_decision(h, i)),
                              py_value(Reason, lib.risk_verdict_report_only_reason(h, i)))
                   for i in range(lib.risk_verdict_report_only_count(h)))
        return cls(user_id=_s(lib.risk_verdict_user_id(h)) or "",
                   at=from_ms(lib.risk_verdict_at(h)),
                   decision=py_value(Decision, lib.risk_verdict_decision(h)),
                   reason=py_value(Reason, lib.risk_verdict_reason(h)),
                   policy=_s(lib.risk_verdict_policy(h)),
                   level=Level(lib.risk_verdict_level(h)), report_only=ro,
                   receipt=_s(lib.risk_verdict_receipt(h)) if lib.has("risk_verdict_receipt")
                   else None)


@dataclass(frozen=True)
class HistoryItem:
    """One audit item (SPEC §2); ``chain`` is its chain hash (R-AU-1)."""
    seq: int
    at: datetime
    actor: str
    action: HistoryAction
    user_id: Optional[str]
    event_id: Optional[str]
    policy: Optional[str]
    level_before: Level
    level_after: Level
    state_before: RiskState
    state_after: RiskState
    changed: int
    note: Optional[str]
    chain: bytes = field(repr=False, default=b"")

    @classmethod
    def _from_handle(cls, h: int) -> "HistoryItem":
        import ctypes
        chain = lib.risk_history_chain(h)
        return cls(seq=lib.risk_history_seq(h),
                   at=from_ms(lib.risk_history_at(h)),  # type: ignore[arg-type]
                   actor=_s(lib.risk_history_actor(h)) or "",
                   action=py_value(HistoryAction, lib.risk_history_action_get(h)),
                   user_id=_s(lib.risk_history_user_id(h)),
                   event_id=_s(lib.risk_history_event_id(h)),
                   policy=_s(lib.risk_history_policy(h)),
                   level_before=Level(lib.risk_history_level_before(h)),
                   level_after=Level(lib.risk_history_level_after(h)),
                   state_before=py_value(RiskState, lib.risk_history_state_before(h)),
                   state_after=py_value(RiskState, lib.risk_history_state_after(h)),
                   changed=lib.risk_history_changed(h), note=_s(lib.risk_history_note(h)),
                   chain=ctypes.string_at(chain, 32) if chain else b"")


@dataclass(frozen=True)
class ExplanationItem:
    """One event in an explanation (R-SC-6, R-SC-8)."""
    event_id: str
    type: str
    level: Level
    state: EventState
    counted: bool
    contribution: int
    aged: bool
    ages_at: Optional[datetime]
    aging: Optional[timedelta]
    type_override: bool


@dataclass(frozen=True)
class Explanation:
    """Why a user's score is what it is (R-SC-6)."""
    now: datetime
    level: Level
    score: int
    counted: int
    risk_since: Optional[datetime]
    next_change_at: Optional[datetime]
    items: Tuple[ExplanationItem, ...]

    @classmethod
    def _from_handle(cls, h: int) -> "Explanation":
        r = lib.risk_explanation_result(h).contents
        items = []
        for i in range(lib.risk_explanation_count(h)):
            aging = lib.risk_explanation_aging_ms(h, i)
            items.append(ExplanationItem(
                event_id=_s(lib.risk_explanation_event_id(h, i)) or "",
                type=_s(lib.risk_explanation_type(h, i)) or "",
                level=Level(lib.risk_explanation_level(h, i)),
                state=py_value(EventState, lib.risk_explanation_state(h, i)),
                counted=bool(lib.risk_explanation_counted(h, i)),
                contribution=lib.risk_explanation_contribution(h, i),
                aged=bool(lib.risk_explanation_aged(h, i)),
                ages_at=from_ms(lib.risk_explanation_ages_at(h, i)),
                aging=timedelta(milliseconds=aging) if aging > 0 else None,
                type_override=bool(lib.risk_explanation_type_override(h, i))))
        return cls(now=from_ms(lib.risk_explanation_now(h)),  # type: ignore[arg-type]
                   level=Level(r.level), score=r.score, counted=r.counted,
                   risk_since=from_ms(r.risk_since), next_change_at=from_ms(r.next_change_at),
                   items=tuple(items))


@dataclass(frozen=True)
class DismissResult:
    """The outcome of dismissing one user's risk (R-DI-1, R-DI-4)."""
    user_id: str
    closed: int = 0
    error: Optional[RiskError] = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class IngestResult:
    """The outcome of ingesting one detection of a batch (R-OP-1…3)."""
    event_id: str
    error: Optional[RiskError] = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Scoring:
    """Scoring parameters (R-SC-3, R-SC-7, R-SC-8). Aging periods are
    ``timedelta`` (or a number of days); ``None`` means never."""
    weights: Tuple[int, int, int] = (1, 3, 9)
    thresholds: Tuple[int, int, int] = (1, 3, 9)
    aging_low: Optional[timedelta] = timedelta(days=180)
    aging_medium: Optional[timedelta] = None
    aging_high: Optional[timedelta] = None
    type_aging: Mapping[str, Optional[timedelta]] = field(default_factory=dict)

    def _to_c(self) -> Tuple[object, object]:
        """The C struct and what it borrows (keep both alive)."""
        from ._ffi import Scoring as CScoring, TypeAging, enc, unsigned
        s = CScoring()
        lib.risk_scoring_init(s)
        # out of the C fields' range is refused, never wrapped (R-SC-7)
        s.weight_low, s.weight_medium, s.weight_high = (
            unsigned(v, f"scoring.weight_{n}") for v, n in _by_level(self.weights, "weights"))
        s.threshold_low, s.threshold_medium, s.threshold_high = (
            unsigned(v, f"scoring.threshold_{n}", 64)
            for v, n in _by_level(self.thresholds, "thresholds"))
        s.aging_low_ms = _ms_span(self.aging_low)
        s.aging_medium_ms = _ms_span(self.aging_medium)
        s.aging_high_ms = _ms_span(self.aging_high)
        arr = (TypeAging * max(1, len(self.type_aging)))()
        for i, (t, period) in enumerate(self.type_aging.items()):
            arr[i].type = enc(t, "type_aging")
            arr[i].aging_ms = _ms_span(period)
        if self.type_aging:
            s.type_aging = arr
            s.type_aging_count = len(self.type_aging)
        lib.risk_scoring_check(s)
        return s, arr


@dataclass(frozen=True)
class Anchor:
    """A history anchor (R-AU-3): keep ``str(anchor)`` somewhere else and
    pass ``Anchor.parse(text)`` to ``Engine.verify_history`` later."""
    seq: int
    subjects: int
    hash: bytes

    def _to_c(self) -> object:
        from ._ffi import Anchor as CAnchor, unsigned
        c = CAnchor()
        c.version = 1
        c.subjects = unsigned(self.subjects, "anchor.subjects")
        c.seq = unsigned(self.seq, "anchor.seq", 64)
        if not isinstance(self.hash, (bytes, bytearray, memoryview)) or len(self.hash) != 32:
            raise InvalidArgument(-1, "anchor: hash must be 32 bytes")
        c.hash[:] = list(self.hash)
        return c

    @classmethod
    def _from_c(cls, c: object) -> "Anchor":
        return cls(seq=c.seq, subjects=c.subjects, hash=bytes(c.hash))  # type: ignore[attr-defined]

    @classmethod
    def parse(cls, text: str) -> "Anchor":
        """Parse ``librisk-anchor 1 SEQ SUBJECTS HEX``."""
        import ctypes
        from ._ffi import Anchor as CAnchor, enc
        c = CAnchor()
        lib.risk_anchor_parse(ctypes.byref(c), enc(text, "anchor"))
        return cls._from_c(c)

    def __str__(self) -> str:
        import ctypes
        c = self._to_c()
        buf = ctypes.create_string_buffer(256)
        lib.risk_anchor_format(buf, len(buf), ctypes.byref(c))  # type: ignore[arg-type]
        return buf.value.decode()


@dataclass(frozen=True)
class WhatIf:
    """What candidate policies would decide for every stored user (R-WI-1):
    ``counts[(decision, reason)]`` and the users (by id) of each outcome."""
    at: datetime
    total: int
    counts: Mapping[Tuple[Decision, Reason], int]
    users: Mapping[Tuple[Decision, Reason], Tuple[str, ...]]

    def count(self, decision: Union[Decision, str], reason: Union[Reason, str, None] = None) -> int:
        """Users with a decision (and, if given, a reason)."""
        d = Decision.parse(decision)
        r = None if reason is None else Reason.parse(reason)
        return sum(n for (dd, rr), n in self.counts.items() if dd is d and (r is None or rr is r))

    @classmethod
    def _from_handle(cls, h: int) -> "WhatIf":
        counts: Dict[Tuple[Decision, Reason], int] = {}
        users: Dict[Tuple[Decision, Reason], Tuple[str, ...]] = {}
        for d in Decision:
            for r in Reason:
                dc, rc = c_value(Decision, d), c_value(Reason, r)
                n = lib.risk_what_if_count(h, dc, rc)
                if n:
                    counts[(d, r)] = n
                    users[(d, r)] = tuple(_s(lib.risk_what_if_user(h, dc, rc, i)) or ""
                                          for i in range(n))
        return cls(at=from_ms(lib.risk_what_if_at(h)),  # type: ignore[arg-type]
                   total=lib.risk_what_if_total(h), counts=counts, users=users)
