"""The C side: finding the library, its structs, callback types, and the ONE
table of prototypes (name, argtypes, restype, errcheck).

Nothing outside this module touches ``ctypes.CDLL`` directly; the rest of the
package calls ``lib.<name>`` whose errcheck already turned a negative result
into the matching :class:`librisk.errors.RiskError` subclass.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import operator
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int64, c_size_t,
                    c_uint8, c_uint32, c_uint64, c_void_p)
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

from .errors import InvalidArgument, RiskError, Unsupported, error_for_code

#: Major release this package was written for; an older library is refused.
PACKAGE_MAJOR = 0
#: SONAME version of the library (see meson.build ``soversion``).
SOVERSION = "0"

TIME_NONE = -1
TIME_MAX = 2 ** 53

# ---------------------------------------------------------------- loading


def _candidates() -> Iterator[Tuple[str, str]]:
    """Where to look, in the documented order (STYLE.md, Python bindings)."""
    here = Path(__file__).resolve().parent
    for name in (f"librisk.so.{SOVERSION}", "librisk.so", "librisk.dylib"):
        if (here / name).exists():
            yield str(here / name), "a copy next to the package"
    yield f"librisk.so.{SOVERSION}", "the system loader"
    found = ctypes.util.find_library("risk")
    if found:
        yield found, "ctypes.util.find_library"


def _load() -> ctypes.CDLL:
    env = os.environ.get("LIBRISK_LIBRARY")
    if env:
        try:
            return ctypes.CDLL(env)
        except OSError as exc:  # an explicit choice must not fall back silently
            raise ImportError(f"librisk: LIBRISK_LIBRARY={env!r} cannot be loaded: {exc}") from exc
    tried: List[str] = []
    for path, how in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as exc:
            tried.append(f"{path} ({how}): {exc}")
    raise ImportError("librisk: the C library was not found; set LIBRISK_LIBRARY to the "
                      "path of librisk.so. Tried:\n  " + "\n  ".join(tried))


# ---------------------------------------------------------------- structs

class TypeAging(Structure):
    _fields_ = [("type", c_char_p), ("aging_ms", c_int64)]


class Scoring(Structure):
    _fields_ = [("version", c_uint32), ("weight_low", c_uint32), ("weight_medium", c_uint32),
                ("weight_high", c_uint32), ("threshold_low", c_uint64),
                ("threshold_medium", c_uint64), ("threshold_high", c_uint64),
                ("aging_low_ms", c_int64), ("aging_medium_ms", c_int64),
                ("aging_high_ms", c_int64), ("type_aging", POINTER(TypeAging)),
                ("type_aging_count", c_uint32)]


class ScoreResult(Structure):
    _fields_ = [("version", c_uint32), ("level", c_uint32), ("score", c_uint64),
                ("counted", c_uint32), ("reserved", c_uint32), ("risk_since", c_int64),
                ("next_change_at", c_int64)]


CLOCK_FN = CFUNCTYPE(c_int64, c_void_p)
FEEDBACK_FN = CFUNCTYPE(None, c_void_p, c_int, c_void_p)
USER_CHANGE_FN = CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)
#: Every visitor (policy, user, event, history): (const handle *, void *) -> int.
VISIT_FN = CFUNCTYPE(c_int, c_void_p, c_void_p)


class EngineOptions(Structure):
    _fields_ = [("version", c_uint32), ("refuse_unknown_users", c_uint32),
                ("temp_password_length", c_uint32), ("max_conflict_retries", c_uint32),
                ("scoring", POINTER(Scoring)), ("clock", CLOCK_FN), ("clock_userdata", c_void_p),
                ("feedback", FEEDBACK_FN), ("feedback_userdata", c_void_p),
                ("user_changed", USER_CHANGE_FN), ("user_changed_userdata", c_void_p),
                ("receipt_key", POINTER(c_uint8)), ("receipt_key_len", c_size_t)]


class Anchor(Structure):
    _fields_ = [("version", c_uint32), ("subjects", c_uint32), ("seq", c_uint64),
                ("hash", c_uint8 * 32)]


class JournalOptions(Structure):
    _fields_ = [("version", c_uint32), ("durability", c_uint32), ("read_only", c_uint32),
                ("sync_interval_ms", c_uint32)]


class JournalStats(Structure):
    _fields_ = [("version", c_uint32), ("reserved", c_uint32), ("records_replayed", c_uint64),
                ("bytes_dropped", c_uint64), ("file_bytes", c_uint64)]


# The storage callback table of include/librisk/store.h, field for field.
S_BEGIN = CFUNCTYPE(c_int, c_void_p, c_char_p, POINTER(c_void_p))
S_COMMIT = CFUNCTYPE(c_int, c_void_p, c_void_p)
S_ROLLBACK = CFUNCTYPE(None, c_void_p, c_void_p)
S_GET = CFUNCTYPE(c_int, c_void_p, c_void_p, c_char_p, POINTER(c_void_p))
S_PUT = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p)
S_USER_EVENTS = CFUNCTYPE(c_int, c_void_p, c_void_p, c_char_p, c_void_p, c_void_p)
S_RESERVE_SEQ = CFUNCTYPE(c_int, c_void_p, c_void_p, POINTER(c_uint64))
S_LIST_POLICIES = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_void_p)
S_REMOVE_POLICY = CFUNCTYPE(c_int, c_void_p, c_void_p, c_char_p)
S_GET_META = CFUNCTYPE(c_int, c_void_p, c_void_p, c_char_p, POINTER(c_uint8), c_size_t,
                       POINTER(c_size_t))
S_PUT_META = CFUNCTYPE(c_int, c_void_p, c_void_p, c_char_p, POINTER(c_uint8), c_size_t)
S_CLOSE = CFUNCTYPE(None, c_void_p)
S_VIEW_USER = CFUNCTYPE(c_int, c_void_p, c_char_p, c_void_p, c_void_p)
S_LIST_USERS = CFUNCTYPE(c_int, c_void_p, c_uint32, c_void_p, c_void_p)
S_READ_HISTORY = CFUNCTYPE(c_int, c_void_p, c_char_p, c_uint64, c_void_p, c_void_p)
S_COMPACT = CFUNCTYPE(c_int, c_void_p)
S_BACKUP = CFUNCTYPE(c_int, c_void_p, c_char_p)
S_PREFETCH_USERS = CFUNCTYPE(None, c_void_p, POINTER(c_char_p), c_size_t)
S_PREFETCH_EVENTS = S_PREFETCH_USERS

#: The version of ``struct risk_store`` that :class:`Store` lays out (RISK_STORE_VERSION).
STORE_STRUCT_VERSION = 3
#: The version the Python host-store adapter declares: it fills the table
#: only up to ``backup`` (version 1), so it works with every 0.x library; the
#: engine then never reads ``prefetch_users`` or ``prefetch_events`` (store.h).
STORE_VERSION = 1
STORE_CALLBACKS = [
    ("begin", S_BEGIN), ("commit", S_COMMIT), ("rollback", S_ROLLBACK),
    ("get_user", S_GET), ("put_user", S_PUT), ("get_event", S_GET), ("put_event", S_PUT),
    ("user_events", S_USER_EVENTS), ("reserve_seq", S_RESERVE_SEQ), ("append_history", S_PUT),
    ("list_policies", S_LIST_POLICIES), ("put_policy", S_PUT),
    ("remove_policy", S_REMOVE_POLICY), ("get_meta", S_GET_META), ("put_meta", S_PUT_META),
    ("close", S_CLOSE), ("view_user", S_VIEW_USER), ("list_users", S_LIST_USERS),
    ("read_history", S_READ_HISTORY), ("compact", S_COMPACT), ("backup", S_BACKUP),
    # version 2
    ("prefetch_users", S_PREFETCH_USERS),
    # version 3
    ("prefetch_events", S_PREFETCH_EVENTS),
]


class Store(Structure):
    """``struct risk_store`` of the newest version (R-ST-1): the shipped
    stores (risk_memory_store_new, risk_journal_open) write all of it, so it
    must never be shorter than the C struct."""
    _fields_ = [("version", c_uint32), ("ctx", c_void_p)] + STORE_CALLBACKS


# ---------------------------------------------------------------- errors

_tls = threading.local()


def note_callback_error(exc: BaseException) -> None:
    """Remember an exception raised inside a callback on this thread, so the
    RiskError the C call then returns is raised *from* it (or, for a
    KeyboardInterrupt/SystemExit, the exception itself is re-raised)."""
    _tls.pending = exc


def take_pending() -> Optional[BaseException]:
    """The exception a callback left on this thread (if any), forgotten."""
    exc = getattr(_tls, "pending", None)
    _tls.pending = None
    return exc


def clear_pending() -> None:
    """Forget a stale callback exception (e.g. one the engine retried past)."""
    _tls.pending = None


def is_interrupt(exc: Optional[BaseException]) -> bool:
    """KeyboardInterrupt, SystemExit, …: never turned into a RiskError."""
    return exc is not None and not isinstance(exc, Exception)


def last_message() -> str:
    raw = lib.risk_error_last()
    return raw.decode("utf-8", "replace") if raw else ""


def _check(result: int, func: Any, args: Any) -> int:
    """errcheck of every fallible function: negative → the matching exception.

    A KeyboardInterrupt or SystemExit raised inside a callback of the call
    is re-raised as is, whatever the call returned (a store callback
    returned an error code to C, so the operation rolled back; a hook runs
    after the commit).
    """
    pending = take_pending()
    if is_interrupt(pending):
        raise pending  # type: ignore[misc]
    if result < 0:
        # The last error is left by the last *failure* of this thread: when
        # its code is not this one, the message is not about this call.
        msg = last_message() if lib.risk_error_last_code() == result else ""
        if not msg:
            raw = lib.risk_strerror(result)
            msg = raw.decode("utf-8", "replace") if raw else ""
        err = error_for_code(result, msg)
        try:
            if pending is not None and pending is not err:
                raise err from pending
            raise err
        finally:
            # The traceback holds this frame: without this, the frame's
            # locals and the exception would form a cycle that keeps the
            # arguments (an engine, its journal lock) alive until the
            # cycle collector runs.
            del err, pending
    return result


def _check_bulk(result: int, func: Any, args: Any) -> int:
    """Bulk calls return a count of failures ≥ 0, or a negative code."""
    return _check(result, func, args)


# ---------------------------------------------------------------- prototypes

H = c_void_p      # every opaque handle: risk_user *, risk_event *, …
S = c_char_p      # UTF-8 in; bytes or None out
I, U32, U64, I64, SZ = c_int, c_uint32, c_uint64, c_int64, c_size_t
C = _check
PH = POINTER(c_void_p)

PROTOTYPES: List[Tuple[str, list, Any, Any]] = [
    # versions and errors
    ("risk_version_number", [], U32, None),
    ("risk_version_string", [], S, None),
    ("risk_strerror", [I], S, None),
    ("risk_error_name", [I], S, None),
    ("risk_error_last", [], S, None),
    ("risk_error_last_code", [], I, None),
    ("risk_error_clear", [], None, None),
    ("risk_error_set", [I, S], I, None),
    ("risk_enum_name", [U32, U32], S, None),
    ("risk_enum_parse", [U32, S, POINTER(U32)], I, None),
    # the pure core
    ("risk_transition", [c_int, c_int, c_int, POINTER(c_int), POINTER(c_int)], I, C),
    ("risk_id_check", [S], I, C),
    # users
    ("risk_user_new", [PH, S], I, C),
    ("risk_user_dup", [PH, H], I, C),
    ("risk_user_free", [H], None, None),
    ("risk_user_id", [H], S, None),
    ("risk_user_mfa_registered", [H], I, None),
    ("risk_user_mfa_registered_at", [H], I64, None),
    ("risk_user_deleted", [H], I, None),
    ("risk_user_must_change_password", [H], I, None),
    ("risk_user_reset_required", [H], I, None),
    ("risk_user_remediated_at", [H], I64, None),
    ("risk_user_risk_level", [H], I, None),
    ("risk_user_risk_state", [H], I, None),
    ("risk_user_risk_detail", [H], I, None),
    ("risk_user_risk_updated_at", [H], I64, None),
    ("risk_user_score", [H], U64, None),
    ("risk_user_risk_since", [H], I64, None),
    ("risk_user_next_change_at", [H], I64, None),
    ("risk_user_active_events", [H], U32, None),
    ("risk_user_set_mfa_registered", [H, I, I64], I, C),
    ("risk_user_set_deleted", [H, I], I, C),
    ("risk_user_version", [H], U64, None),
    # events
    ("risk_event_new", [PH, S, S, S, I, I64], I, C),
    ("risk_event_free", [H], None, None),
    ("risk_event_id", [H], S, None),
    ("risk_event_user_id", [H], S, None),
    ("risk_event_type", [H], S, None),
    ("risk_event_level", [H], I, None),
    ("risk_event_detected_at", [H], I64, None),
    ("risk_event_timing", [H], I, None),
    ("risk_event_ip", [H], S, None),
    ("risk_event_location", [H], S, None),
    ("risk_event_source", [H], S, None),
    ("risk_event_state_get", [H], I, None),
    ("risk_event_close_reason", [H], I, None),
    ("risk_event_closed_at", [H], I64, None),
    ("risk_event_closed_by", [H], S, None),
    ("risk_event_note", [H], S, None),
    ("risk_event_set_timing", [H, I], I, C),
    ("risk_event_set_ip", [H, S], I, C),
    ("risk_event_set_location", [H, S], I, C),
    ("risk_event_set_source", [H, S], I, C),
    ("risk_event_set_note", [H, S], I, C),
    ("risk_event_set_closing", [H, I, I, I64, S], I, C),
    # policies
    ("risk_policy_new", [PH, S, I, I], I, C),
    ("risk_policy_free", [H], None, None),
    ("risk_policy_name", [H], S, None),
    ("risk_policy_mode_get", [H], I, None),
    ("risk_policy_threshold", [H], I, None),
    ("risk_policy_control", [H], I, None),
    ("risk_policy_include_count", [H], SZ, None),
    ("risk_policy_include_at", [H, SZ], S, None),
    ("risk_policy_exclude_count", [H], SZ, None),
    ("risk_policy_exclude_at", [H, SZ], S, None),
    ("risk_policy_set_mode", [H, I], I, C),
    ("risk_policy_include_add", [H, S], I, C),
    ("risk_policy_exclude_add", [H, S], I, C),
    # history items
    ("risk_history_free", [H], None, None),
    ("risk_history_seq", [H], U64, None),
    ("risk_history_at", [H], I64, None),
    ("risk_history_actor", [H], S, None),
    ("risk_history_action_get", [H], I, None),
    ("risk_history_user_id", [H], S, None),
    ("risk_history_event_id", [H], S, None),
    ("risk_history_policy", [H], S, None),
    ("risk_history_level_before", [H], I, None),
    ("risk_history_level_after", [H], I, None),
    ("risk_history_state_before", [H], I, None),
    ("risk_history_state_after", [H], I, None),
    ("risk_history_changed", [H], U32, None),
    ("risk_history_note", [H], S, None),
    ("risk_history_chain", [H], POINTER(c_uint8), None),
    # canonical encoding (host stores)
    ("risk_user_encode", [c_void_p, SZ, POINTER(SZ), H], I, C),
    ("risk_user_decode", [PH, c_char_p, SZ], I, C),
    ("risk_event_encode", [c_void_p, SZ, POINTER(SZ), H], I, C),
    ("risk_event_decode", [PH, c_char_p, SZ], I, C),
    ("risk_policy_encode", [c_void_p, SZ, POINTER(SZ), H], I, C),
    ("risk_policy_decode", [PH, c_char_p, SZ], I, C),
    ("risk_history_encode", [c_void_p, SZ, POINTER(SZ), H], I, C),
    ("risk_history_decode", [PH, c_char_p, SZ], I, C),
    # scoring, explanations, verdicts
    ("risk_scoring_init", [POINTER(Scoring)], I, C),
    ("risk_scoring_check", [POINTER(Scoring)], I, C),
    ("risk_explain", [PH, POINTER(Scoring), POINTER(c_void_p), SZ, I64], I, C),
    ("risk_explanation_free", [H], None, None),
    ("risk_explanation_result", [H], POINTER(ScoreResult), None),
    ("risk_explanation_now", [H], I64, None),
    ("risk_explanation_count", [H], SZ, None),
    ("risk_explanation_event_id", [H, SZ], S, None),
    ("risk_explanation_type", [H, SZ], S, None),
    ("risk_explanation_level", [H, SZ], I, None),
    ("risk_explanation_counted", [H, SZ], I, None),
    ("risk_explanation_contribution", [H, SZ], U64, None),
    ("risk_explanation_aged", [H, SZ], I, None),
    ("risk_explanation_ages_at", [H, SZ], I64, None),
    ("risk_explanation_aging_ms", [H, SZ], I64, None),
    ("risk_explanation_type_override", [H, SZ], I, None),
    ("risk_explanation_state", [H, SZ], I, None),
    ("risk_verdict_new", [PH], I, C),
    ("risk_verdict_free", [H], None, None),
    ("risk_verdict_decision", [H], I, None),
    ("risk_verdict_reason", [H], I, None),
    ("risk_verdict_policy", [H], S, None),
    ("risk_verdict_level", [H], I, None),
    ("risk_verdict_user_id", [H], S, None),
    ("risk_verdict_at", [H], I64, None),
    ("risk_verdict_report_only_count", [H], SZ, None),
    ("risk_verdict_report_only_policy", [H, SZ], S, None),
    ("risk_verdict_report_only_decision", [H, SZ], I, None),
    ("risk_verdict_report_only_reason", [H, SZ], I, None),
    # engine
    ("risk_engine_options_init", [POINTER(EngineOptions)], I, C),
    ("risk_engine_new", [PH, POINTER(Store), POINTER(EngineOptions)], I, C),
    ("risk_engine_free", [H], None, None),
    ("risk_engine_now", [H], I64, None),
    ("risk_engine_upsert_user", [H, S, H], I, C),
    ("risk_engine_ingest", [H, S, H, U32], I, C),
    ("risk_engine_ingest_bulk", [H, S, POINTER(c_void_p), SZ, U32, POINTER(I)], I, _check_bulk),
    ("risk_engine_sign_in", [H, S, H], I, C),
    ("risk_engine_sign_in_bulk", [H, POINTER(c_char_p), SZ, POINTER(c_void_p), POINTER(I)], I,
     _check_bulk),
    ("risk_engine_password_changed", [H, S, S, I], I, C),
    ("risk_engine_temporary_password", [H, S, S, c_char_p, SZ], I, C),
    ("risk_engine_require_reset", [H, S, S], I, C),
    ("risk_engine_dismiss", [H, S, S, S, POINTER(U32)], I, C),
    ("risk_engine_dismiss_bulk", [H, S, POINTER(c_char_p), SZ, S, POINTER(I), POINTER(U32)],
     I, _check_bulk),
    ("risk_engine_resolve", [H, S, S, S], I, C),
    ("risk_engine_false_positive", [H, S, S, S], I, C),
    ("risk_engine_ignore", [H, S, S, S], I, C),
    ("risk_engine_reactivate", [H, S, S, S], I, C),
    ("risk_engine_confirm_compromised", [H, S, S], I, C),
    ("risk_engine_confirm_safe", [H, S, S], I, C),
    ("risk_engine_policy_set", [H, S, H], I, C),
    ("risk_engine_policy_remove", [H, S, S], I, C),
    ("risk_engine_policies", [H, VISIT_FN, c_void_p], I, C),
    ("risk_engine_policies_changed", [H], I, C),
    ("risk_engine_user", [PH, H, S], I, C),
    ("risk_engine_event", [PH, H, S], I, C),
    ("risk_engine_events", [H, S, U32, VISIT_FN, c_void_p], I, C),
    ("risk_engine_users", [H, I, VISIT_FN, c_void_p], I, C),
    ("risk_engine_history", [H, S, VISIT_FN, c_void_p], I, C),
    ("risk_engine_history_feed", [H, U64, VISIT_FN, c_void_p], I, C),
    ("risk_engine_explain", [PH, H, S], I, C),
    ("risk_engine_expire", [H, POINTER(U64), POINTER(U64)], I, C),
    ("risk_engine_compact", [H], I, C),
    ("risk_engine_sync", [H], I, C),
    ("risk_engine_backup", [H, S], I, C),
    # audit chain, what-if, receipts (SPEC §10)
    ("risk_engine_history_anchor", [H, POINTER(Anchor)], I, C),
    ("risk_engine_verify_history", [H, POINTER(Anchor), POINTER(U64)], I, C),
    ("risk_anchor_format", [c_char_p, SZ, POINTER(Anchor)], I, C),
    ("risk_anchor_parse", [POINTER(Anchor), S], I, C),
    ("risk_engine_what_if", [PH, H, POINTER(c_void_p), SZ, I64], I, C),
    ("risk_what_if_free", [H], None, None),
    ("risk_what_if_total", [H], SZ, None),
    ("risk_what_if_count", [H, I, I], SZ, None),
    ("risk_what_if_user", [H, I, I, SZ], S, None),
    ("risk_what_if_at", [H], I64, None),
    ("risk_verdict_want_receipt", [H, I], I, C),
    ("risk_verdict_receipt", [H], S, None),
    ("risk_receipt_verify", [S, c_char_p, SZ], I, C),
    # shipped stores
    ("risk_memory_store_new", [POINTER(Store)], I, C),
    ("risk_journal_open", [POINTER(Store), S, POINTER(JournalOptions), POINTER(JournalStats)],
     I, C),
]


class _Missing:
    """Stands in for a function the loaded library lacks (an older build)."""

    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __call__(self, *args: Any) -> Any:
        raise Unsupported(f"{self.__name__}: not provided by the loaded librisk")


class _Lib:
    """The prototypes bound to the loaded library, as attributes."""

    def __init__(self, dll: ctypes.CDLL) -> None:
        self.dll = dll
        self.missing: List[str] = []
        for name, argtypes, restype, errcheck in PROTOTYPES:
            try:
                fn = getattr(dll, name)
            except AttributeError:
                self.missing.append(name)
                setattr(self, name, _Missing(name))
                continue
            fn.argtypes = argtypes
            fn.restype = restype
            if errcheck is not None:
                fn.errcheck = errcheck
            setattr(self, name, fn)

    def has(self, name: str) -> bool:
        return name not in self.missing and hasattr(self.dll, name)


def check_version(number: int) -> None:
    """Refuse a library of another major release: an older one lacks the API,
    a newer one changed it incompatibly (librisk.h, RISK_VERSION_MAJOR)."""
    major = number // 10000
    if major != PACKAGE_MAJOR:
        release = f"{major}.{number // 100 % 100}.{number % 100}"
        raise ImportError(f"librisk: the loaded library is release {release}, "
                          f"{'older' if major < PACKAGE_MAJOR else 'newer'} than the major "
                          f"{PACKAGE_MAJOR} this package was written for; install a "
                          f"librisk {PACKAGE_MAJOR}.x (or the matching Python package)")


lib = _Lib(_load())
check_version(lib.risk_version_number())


# ---------------------------------------------------------------- helpers

def unsigned(value: Any, what: str, bits: int = 32) -> int:
    """An int for an unsigned C field: negative or too large values are
    refused instead of wrapping silently, and so is a bool (True is an int
    to Python, but never meant as a count or a weight)."""
    if isinstance(value, bool):
        raise InvalidArgument(-1, f"{what}: expected int, got bool")
    if not isinstance(value, int):
        try:
            value = operator.index(value)
        except TypeError:
            raise InvalidArgument(-1, f"{what}: expected int, got "
                                      f"{type(value).__name__}") from None
    if not 0 <= value < 1 << bits:
        raise InvalidArgument(-1, f"{what}: {value} is out of range 0…{(1 << bits) - 1}")
    return int(value)


def enc(text: Optional[str], what: str = "text") -> Optional[bytes]:
    """str → UTF-8 bytes for a ``const char *`` (None stays NULL)."""
    if text is None:
        return None
    if isinstance(text, bytes):
        raw = text
    elif not isinstance(text, str):
        raise InvalidArgument(-1, f"{what}: expected str, got {type(text).__name__}")
    else:
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(-1, f"{what}: not encodable as UTF-8 ({exc.reason})") from None
    # C would see the string end there: "carol\0x" would name "carol"
    nul = raw.find(b"\0")
    if nul >= 0:
        raise InvalidArgument(-1, f"{what}: control character 0x00 at byte {nul}")
    return raw


def dec(raw: Optional[bytes]) -> Optional[str]:
    return raw.decode("utf-8") if raw is not None else None


def encode_handle(kind: str, handle: int) -> bytes:
    """The canonical bytes of a record handle (kind: user/event/policy/history)."""
    fn = getattr(lib, f"risk_{kind}_encode")
    n = c_size_t(0)
    buf = ctypes.create_string_buffer(256)
    try:
        fn(buf, len(buf), ctypes.byref(n), handle)
    except RiskError as exc:
        if exc.code != -13:
            raise
        buf = ctypes.create_string_buffer(n.value)
        fn(buf, len(buf), ctypes.byref(n), handle)
    return buf.raw[:n.value]


def decode_handle(kind: str, data: bytes) -> int:
    """A new handle (owned by the caller) from canonical bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(-1, f"{kind}: a store must return bytes, got {type(data).__name__}")
    data = bytes(data)
    out = c_void_p()
    getattr(lib, f"risk_{kind}_decode")(ctypes.byref(out), data, len(data))
    return out.value
