"""The engine: every operation of SPEC §6 as a method.

``Engine.memory()``, ``Engine.open(path)`` and ``Engine(store=obj)`` own one C
``risk_engine``; ``close()`` (or the ``with`` block, or, as a safety net,
garbage collection through ``weakref.finalize``) frees it and closes its
store. Methods that change anything take ``actor=`` (default: the engine's
``actor`` option, R-OP-0). Times are aware ``datetime`` objects.

Lifetime: every method counts itself in flight; ``close()`` refuses new
calls, waits for those in flight (R-CC-1), then frees the C engine. The C
callbacks (clock, hooks, host store) reach the Python callables only
through a weak reference to what the Engine holds, so the finalizer holds
nothing but the C handle and the thunks, and fires even when a hook or store
refers back to the engine. (An engine collected as part of such a cycle can
no longer call a host store's ``close()``: close engines explicitly.)
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
import time
import weakref
from ctypes import byref, c_char_p, c_int, c_uint32, c_uint64, c_void_p
from datetime import datetime
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar,
                    Union, overload)

from . import _ffi
from ._ffi import (CLOCK_FN, FEEDBACK_FN, TIME_NONE, USER_CHANGE_FN, VISIT_FN, EngineOptions,
                   JournalOptions, JournalStats, Store, enc, lib, unsigned)
from ._hoststore import HostStoreAdapter, report_unraisable
from .errors import InvalidArgument, RiskError, error_for_code
from .types import (Anchor, DismissResult, Durability, Event, Explanation, HistoryItem,
                    IngestResult, Level, Policy, PasswordChange, Scoring, Timing, User, Verdict,
                    WhatIf, _event_handle, c_value, from_ms, id_tuple, to_ms)

__all__ = ["Engine"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
LevelLike = Union[Level, str, int]

_DURABILITY = {Durability.FULL: 0, Durability.NORMAL: 1, Durability.OFF: 2}
_EVENTS_ACTIVE = 1
_INGEST_UPDATE = 1
_EINVAL = -1

#: ``.stack``: the engines this thread is inside a call of, innermost last.
#: The outermost call owns the thread's pending callback exception
#: (_ffi.note_callback_error); close() must not wait for its own thread.
_calls = threading.local()


def _call_stack() -> List["Engine"]:
    stack: Optional[List[Engine]] = getattr(_calls, "stack", None)
    if stack is None:
        stack = _calls.stack = []
    return stack


class _Box(list):
    """What a visitor collects into; carries an exception raised while visiting."""
    error: Optional[BaseException] = None


def _collector(factory: Callable[[int], Any]) -> Any:
    @VISIT_FN
    def visit(handle: int, arg: int) -> int:
        box = ctypes.cast(arg, ctypes.py_object).value
        try:
            box.append(factory(handle))
        except BaseException as exc:  # noqa: BLE001 — stop visiting, re-raise after
            box.error = exc
            return 1
        return 0
    return visit


# One thunk per record kind for the whole process: listings allocate none.
_VISIT_USER = _collector(User._from_handle)
_VISIT_EVENT = _collector(Event._from_handle)
_VISIT_POLICY = _collector(Policy._from_handle)
_VISIT_HISTORY = _collector(HistoryItem._from_handle)


_UNSEEN = object()


class _Targets:
    """The Python callables an engine's C callbacks call. The Engine holds
    this strongly; the thunks only through a weak reference (see the module
    docstring), so a hook that refers back to the engine makes no leak."""
    __slots__ = ("clock", "feedback", "on_change", "adapter", "policy_gen", "seen_gen",
                 "__weakref__")

    def __init__(self) -> None:
        self.clock: Optional[Callable[[], datetime]] = None
        self.feedback: Optional[Callable[[Event, bool], None]] = None
        self.on_change: Optional[Callable[[Optional[User], User], None]] = None
        self.adapter: Optional[HostStoreAdapter] = None
        #: the host store's ``policies_generation``, if it has one
        self.policy_gen: Optional[Callable[[], Any]] = None
        #: the generation the engine's policy cache was last checked against
        self.seen_gen: Any = _UNSEEN


def _hook_failed(exc: BaseException, where: str) -> None:
    """A hook or the clock raised: the operation committed already, so the
    exception is reported; a KeyboardInterrupt/SystemExit is re-raised by
    the engine call once it returns (_ffi._check)."""
    if _ffi.is_interrupt(exc):
        _ffi.note_callback_error(exc)
    else:
        report_unraisable(exc, where)


def _engine_call(method: F) -> F:
    """Count the call in flight for close(), and own the thread's pending
    callback exception: a stale one is dropped at the start, and an
    interrupt a void C call could not report is raised at the end."""
    @functools.wraps(method)
    def call(self: "Engine", *args: Any, **kwargs: Any) -> Any:
        with self._cond:
            if self._closing:
                raise InvalidArgument(-1, "engine: closed")
            self._in_flight += 1
        stack = _call_stack()
        outermost = not stack
        stack.append(self)
        if outermost:
            _ffi.clear_pending()
        try:
            result = method(self, *args, **kwargs)
            if outermost:
                pending = _ffi.take_pending()
                if _ffi.is_interrupt(pending):
                    raise pending  # type: ignore[misc]
            return result
        finally:
            # the count first: close() waits for it
            with self._cond:
                self._in_flight -= 1
                if self._closing and not self._in_flight:
                    self._cond.notify_all()
            stack.pop()
            if outermost:
                _ffi.clear_pending()
    return call  # type: ignore[return-value]


def _policy_handle(policy: Policy) -> int:
    """A new C policy (owned by the caller) from a Policy."""
    out = c_void_p()
    lib.risk_policy_new(byref(out), enc(policy.name, "name"), int(policy.threshold),
                        c_value(type(policy.control), policy.control))
    try:
        lib.risk_policy_set_mode(out, c_value(type(policy.mode), policy.mode))
        for u in policy.include:
            lib.risk_policy_include_add(out, enc(u, "include"))
        for u in policy.exclude:
            lib.risk_policy_exclude_add(out, enc(u, "exclude"))
    except BaseException:
        lib.risk_policy_free(out)
        raise
    return out.value


def _close_cstore(cstore: Store) -> None:
    """Close a C store no engine took (risk_engine_new() failed or never ran)."""
    if cstore.close:
        cstore.close(cstore.ctx)


def _free_engine(handle: int, keepalive: List[Any],
                 report: bool = True) -> Optional[BaseException]:
    """Free the engine, then let go of the callbacks it used. Returns what
    the store's close() raised (report=False, from Engine.close()), or
    reports it (the garbage-collection safety net)."""
    outer = _ffi.take_pending()  # not ours (a finalizer runs anywhere): restored below
    try:
        lib.risk_engine_free(handle)
        exc = _ffi.take_pending()
    finally:
        keepalive.clear()
        if outer is not None:
            _ffi.note_callback_error(outer)
    if exc is not None and report:
        report_unraisable(exc, "store close() of a garbage-collected Engine")
        return None
    return exc


def _item_error(code: int, user_id: str) -> RiskError:
    """The error of one item of a bulk call: its code, the user, and for an
    invalid id the library's detailed message (the bulk calls report only
    codes, so the id's check is re-run to get it)."""
    detail = (lib.risk_strerror(code) or b"").decode()
    if code == _EINVAL:
        try:
            lib.risk_id_check(enc(user_id, "user_id"))
        except InvalidArgument as exc:
            detail = exc.message.removeprefix("id: ")
    return error_for_code(code, f"user_id {user_id!r}: {detail}")


def _event_error(code: int, event: Event) -> RiskError:
    """The error of one detection of risk_engine_ingest_bulk(), which
    reports only codes: for an invalid one, the reason found again."""
    detail = (lib.risk_strerror(code) or b"").decode()
    if code == _EINVAL and event.id.startswith("librisk:"):
        detail = "event.id: ids beginning 'librisk:' are reserved"
    return error_for_code(code, f"event {event.id!r}: {detail}")


def _check_clock(clock: Any) -> None:
    """A clock is a fixed aware datetime or a callable returning one: read
    it once now, so that a wrong one is refused here rather than replaced
    by the real time at every call. A clock that cannot answer yet (it may
    refer to the engine being made) is let through: its calls are checked
    as they come, and a failing one falls back to the real time."""
    if clock is None or isinstance(clock, datetime):
        if clock is not None:
            to_ms(clock, "clock")
        return
    if not callable(clock):
        raise InvalidArgument(-1, f"clock: expected an aware datetime or a callable returning "
                                  f"one, got {type(clock).__name__}")
    try:
        now = clock()
    except Exception:  # noqa: BLE001 — see above
        return
    to_ms(now, "clock")


def _tick(targets: "weakref.ReferenceType[_Targets]", _ud: int) -> int:
    t = targets()
    try:
        if t is not None and t.clock is not None:
            return to_ms(t.clock(), "clock")
    except BaseException as exc:  # noqa: BLE001 — fall back to real time
        _hook_failed(exc, "clock")
    return int(time.time() * 1000)


def _feedback(targets: "weakref.ReferenceType[_Targets]", h: int, withdrawn: int,
              _ud: int) -> None:
    t = targets()
    if t is None or t.feedback is None:
        return
    try:
        t.feedback(Event._from_handle(h), bool(withdrawn))
    except BaseException as exc:  # noqa: BLE001 — committed already
        _hook_failed(exc, "feedback hook")


def _user_changed(targets: "weakref.ReferenceType[_Targets]", before: int, after: int,
                  _ud: int) -> None:
    t = targets()
    if t is None or t.on_change is None:
        return
    try:
        t.on_change(User._from_handle(before) if before else None, User._from_handle(after))
    except BaseException as exc:  # noqa: BLE001 — committed already
        _hook_failed(exc, "on_user_change hook")


class Engine:
    """An engine over a store (R-ST-2). Thread-safe like the C engine (R-CC-1).

    Options (keywords of every constructor):
        actor: default actor of changing methods (default ``"python"``).
        clock: a callable returning an aware ``datetime``, or a fixed aware
            ``datetime`` used as "now" (tests, replays).
        refuse_unknown_users: ingest for an unknown user raises ``NotFound``.
        temp_password_length: 12–128 (default 16).
        max_conflict_retries: retries on ``Conflict``, at most 1000 (default 8).
        scoring: a :class:`Scoring`.
        feedback: ``callable(event, withdrawn)`` after a false positive is
            marked (withdrawn False) or reactivated (True), R-IN-2.
        on_user_change: ``callable(before, after)`` after commit when a user's
            level, state or detail changed (before is None for a new user).
        receipt_key: ``bytes`` (≥ 16) for signed sign-in receipts.
    """

    def __init__(self, store: Any = None, *, actor: str = "python",
                 clock: Union[None, datetime, Callable[[], datetime]] = None,
                 refuse_unknown_users: bool = False, temp_password_length: int = 0,
                 max_conflict_retries: int = 0, scoring: Optional[Scoring] = None,
                 feedback: Optional[Callable[[Event, bool], None]] = None,
                 on_user_change: Optional[Callable[[Optional[User], User], None]] = None,
                 receipt_key: Optional[bytes] = None,
                 _cstore: Optional[Store] = None) -> None:
        """``_cstore``: a C store opened by the caller (Engine.open), who
        closes it if this raises."""
        self._handle: Optional[int] = None
        self._cond = threading.Condition(threading.Lock())
        self._in_flight = 0  # calls inside the C engine (_engine_call)
        self._closing = False  # close() began: new calls are refused
        self._targets = _Targets()
        keep: List[Any] = []
        created = _cstore is None and store is None
        if created:
            _cstore = Store()
            lib.risk_memory_store_new(byref(_cstore))
        try:
            self._actor_b = enc(actor, "actor")
            try:  # R-OP-0: the default actor is an id, checked now, not at each call
                lib.risk_id_check(self._actor_b)
            except InvalidArgument as exc:
                raise InvalidArgument(-1, "actor: " + exc.message.removeprefix("id: ")) from None
            _check_clock(clock)
            if receipt_key is not None and not isinstance(receipt_key,
                                                          (bytes, bytearray, memoryview)):
                raise InvalidArgument(-1, "receipt_key: expected bytes, got "
                                          f"{type(receipt_key).__name__}")
            self._receipt_key = bytes(receipt_key) if receipt_key is not None else b""
            if _cstore is None:
                adapter = HostStoreAdapter(store)
                self._targets.adapter = adapter
                self._targets.policy_gen = getattr(store, "policies_generation", None)
                keep.append(adapter.keep)
                _cstore = adapter.table
            opts = self._options(keep, clock, refuse_unknown_users, temp_password_length,
                                 max_conflict_retries, scoring, feedback, on_user_change,
                                 receipt_key)
            out = c_void_p()
            lib.risk_engine_new(byref(out), byref(_cstore), byref(opts))
        except BaseException:
            # On failure the store is still ours to close (risk_engine_new()).
            if created:
                _close_cstore(_cstore)  # type: ignore[arg-type]
            raise
        # From here on nothing may fail: the C engine owns the store.
        keep.append(_cstore)
        self._handle = out.value
        self._finalizer = weakref.finalize(self, _free_engine, out.value, keep)

    # -- constructors
    @classmethod
    def memory(cls, **options: Any) -> "Engine":
        """An engine over a fresh in-memory store."""
        return cls(None, **options)

    @classmethod
    def open(cls, path: "os.PathLike[str] | str",
             durability: "Durability | str" = Durability.FULL, *, read_only: bool = False,
             sync_interval_ms: int = 0, **options: Any) -> "Engine":
        """An engine over a journal file (R-CC-3); ``durability`` is a
        :class:`Durability` or its spelling ("full", "normal", "off").
        Raises ``Busy`` if another writer has it open."""
        try:
            mode = Durability(durability.lower() if type(durability) is str else durability)
        except (ValueError, AttributeError):
            raise InvalidArgument(-1, "durability: one of full, normal, off") from None
        jo = JournalOptions(1, _DURABILITY[mode], int(bool(read_only)),
                            unsigned(sync_interval_ms, "sync_interval_ms"))
        cstore, stats = Store(), JournalStats()
        lib.risk_journal_open(byref(cstore), enc(os.fspath(path), "path"), byref(jo),
                              byref(stats))
        try:
            engine = cls(None, _cstore=cstore, **options)
        except BaseException:
            # No engine took the journal: close it, or its writer lock stays
            # held and every later open is Busy (R-CC-3).
            _close_cstore(cstore)
            raise
        engine.journal_stats = {"records_replayed": stats.records_replayed,
                                "bytes_dropped": stats.bytes_dropped,
                                "file_bytes": stats.file_bytes}
        return engine

    def _options(self, keep: List[Any], clock: Any, refuse: bool, temp_len: int,
                 retries: int, scoring: Optional[Scoring], feedback: Any, on_change: Any,
                 receipt_key: Optional[bytes]) -> EngineOptions:
        opts = EngineOptions()
        lib.risk_engine_options_init(byref(opts))
        opts.refuse_unknown_users = int(bool(refuse))
        opts.temp_password_length = unsigned(temp_len, "temp_password_length")
        opts.max_conflict_retries = unsigned(retries, "max_conflict_retries")
        keep.append(opts)
        if scoring is not None:
            s, arr = scoring._to_c()
            keep += [s, arr]
            opts.scoring = ctypes.pointer(s)
        if isinstance(clock, datetime):
            fixed = to_ms(clock, "clock")
            clock = None
            cb = CLOCK_FN(lambda _ud: fixed)
            keep.append(cb)
            opts.clock = cb
        elif clock is not None:
            self._targets.clock = clock
            cb = CLOCK_FN(functools.partial(_tick, weakref.ref(self._targets)))
            keep.append(cb)
            opts.clock = cb
        if feedback is not None:
            self._targets.feedback = feedback
            cb = FEEDBACK_FN(functools.partial(_feedback, weakref.ref(self._targets)))
            keep.append(cb)
            opts.feedback = cb
        if on_change is not None:
            self._targets.on_change = on_change
            cb = USER_CHANGE_FN(functools.partial(_user_changed, weakref.ref(self._targets)))
            keep.append(cb)
            opts.user_changed = cb
        if receipt_key is not None:
            key = (ctypes.c_uint8 * len(receipt_key)).from_buffer_copy(bytes(receipt_key))
            keep.append(key)
            opts.receipt_key = ctypes.cast(key, ctypes.POINTER(ctypes.c_uint8))
            opts.receipt_key_len = len(receipt_key)
        return opts

    # -- lifetime
    @property
    def _h(self) -> int:
        if self._handle is None:
            raise InvalidArgument(-1, "engine: closed")
        return self._handle

    @property
    def closed(self) -> bool:
        return self._handle is None or self._closing

    def close(self) -> None:
        """Free the engine and close its store. Idempotent.

        New calls raise ``InvalidArgument("engine: closed")`` at once; calls
        in flight on other threads are waited for (R-CC-1). What the store's
        ``close()`` raised is raised here. Calling it from inside a call of
        this engine (a hook, a host-store callback) raises RuntimeError.
        """
        if any(e is self for e in _call_stack()):
            raise RuntimeError("engine: close() from inside a call of this engine "
                               "(a hook or store callback) would wait for itself")
        with self._cond:
            self._closing = True
            while self._in_flight:
                self._cond.wait()
            if self._handle is None:
                return  # closed by another thread meanwhile
            self._handle = None
            detached = self._finalizer.detach()
        if detached is None:
            return
        _self, free, args, _kwargs = detached
        try:
            exc = free(*args, report=False)
        finally:
            self._targets = _Targets()  # let go of hooks and store: no cycle through them
        if exc is not None:
            raise exc

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _a(self, actor: Optional[str]) -> Optional[bytes]:
        return self._actor_b if actor is None else enc(actor, "actor")

    @_engine_call
    def now(self) -> datetime:
        """The engine's current time (its clock)."""
        return from_ms(lib.risk_engine_now(self._h))  # type: ignore[return-value]

    # -- users and events
    @_engine_call
    def upsert_user(self, user_id: str, *, mfa_registered: bool = False,
                    mfa_registered_at: Optional[datetime] = None, deleted: bool = False,
                    actor: Optional[str] = None) -> User:
        """Create or update a user; only the MFA registration and the deleted
        flag can be set (R-OP-4). Returns the stored user."""
        out = c_void_p()
        lib.risk_user_new(byref(out), enc(user_id, "user_id"))
        try:
            at = TIME_NONE if mfa_registered_at is None else to_ms(mfa_registered_at,
                                                                    "mfa_registered_at")
            lib.risk_user_set_mfa_registered(out, int(bool(mfa_registered)), at)
            lib.risk_user_set_deleted(out, int(bool(deleted)))
            lib.risk_engine_upsert_user(self._h, self._a(actor), out)
        finally:
            lib.risk_user_free(out)
        return self.user(user_id)

    @_engine_call
    def ingest(self, user_id: str, event_id: str, type: str, level: LevelLike,
               detected_at: datetime, *, timing: Union[Timing, str] = Timing.REALTIME,
               ip: Optional[str] = None, location: Optional[str] = None,
               source: Optional[str] = None, update: bool = False,
               actor: Optional[str] = None) -> None:
        """Ingest a detection (R-OP-1…3, R-OP-7): idempotent by event id;
        ``update=True`` updates an active event that changed."""
        out = c_void_p()
        lib.risk_event_new(byref(out), enc(event_id, "event_id"), enc(user_id, "user_id"),
                           enc(type, "type"), int(Level.parse(level, "level")),
                           to_ms(detected_at, "detected_at"))
        try:
            lib.risk_event_set_timing(out, c_value(Timing, timing, "timing"))
            if ip is not None:
                lib.risk_event_set_ip(out, enc(ip, "ip"))
            if location is not None:
                lib.risk_event_set_location(out, enc(location, "location"))
            if source is not None:
                lib.risk_event_set_source(out, enc(source, "source"))
            lib.risk_engine_ingest(self._h, self._a(actor), out,
                                   _INGEST_UPDATE if update else 0)
        finally:
            lib.risk_event_free(out)

    @_engine_call
    def ingest_many(self, events: Iterable[Event], *, update: bool = False,
                    actor: Optional[str] = None) -> List[IngestResult]:
        """Ingest many detections, each atomic on its own, as :meth:`ingest`
        ingests one (``risk_engine_ingest_bulk``). Only the detection fields
        of each :class:`Event` are used (id, user_id, type, level,
        detected_at, timing, ip, location, source); each arrives active.
        Returns an :class:`IngestResult` per event, in order: a failed item
        (an invalid field is ``InvalidArgument``) carries its error and
        changed nothing. An item that is not an :class:`Event` raises
        ``InvalidArgument`` before any event is ingested. On the built-in
        stores the call fetches users and event ids ahead of their lookups,
        and on a journal with full durability its items share their syncs
        (one wait per 16 items), so many events cost much less than one
        :meth:`ingest` each; an item is reported ingested only once it is
        on the disk."""
        evs = list(events)
        for e in evs:
            if not isinstance(e, Event):
                raise InvalidArgument(-1, "events: expected Event objects, got "
                                          f"{type(e).__name__}")
        flags = _INGEST_UPDATE if update else 0
        handles = (c_void_p * max(1, len(evs)))()
        invalid: Dict[int, RiskError] = {}
        try:
            for i, e in enumerate(evs):
                try:
                    handles[i] = _event_handle(e)
                except InvalidArgument as exc:  # its item fails alone (NULL: refused)
                    invalid[i] = error_for_code(exc.code, f"event {e.id!r}: {exc.message}")
            codes = (c_int * max(1, len(evs)))()
            if self._targets.adapter is not None:
                # A host store: one call each (as the bulk call does inside),
                # so that a failure keeps its message and the store's exception.
                lib.risk_engine_ingest_bulk(self._h, self._a(actor), handles, 0, flags, codes)
                results: List[IngestResult] = []
                for i, e in enumerate(evs):
                    if i in invalid:
                        results.append(IngestResult(e.id, invalid[i]))
                        continue
                    try:
                        lib.risk_engine_ingest(self._h, self._a(actor), handles[i], flags)
                        results.append(IngestResult(e.id))
                    except RiskError as exc:
                        results.append(IngestResult(e.id, exc))
                return results
            lib.risk_engine_ingest_bulk(self._h, self._a(actor), handles, len(evs), flags, codes)
            return [IngestResult(e.id, invalid[i] if i in invalid else
                                 None if codes[i] == 0 else _event_error(codes[i], e))
                    for i, e in enumerate(evs)]
        finally:
            for h in handles:
                lib.risk_event_free(h)

    def _follow_policies(self) -> None:
        """Before a sign-in: if the host store reports a policy generation
        and it moved since the last look (another engine on the same
        database changed a policy, R-ST-6), drop the policy cache so the
        sign-in decides under the stored policies. A generation that cannot
        be read drops the cache too: the sign-in then reads the policies
        itself and reports the store's failure."""
        t = self._targets
        if t.policy_gen is None:
            return
        try:
            gen = t.policy_gen()
        except Exception:
            gen = _UNSEEN
        if gen is _UNSEEN or gen != t.seen_gen:
            lib.risk_engine_policies_changed(self._h)
            t.seen_gen = gen

    @_engine_call
    def refresh_policies(self) -> None:
        """Drop the engine's cache of the stored policies; the next sign-in
        reads them again. For host stores that share a database with other
        engines but report no ``policies_generation``: call it when the
        policies may have changed elsewhere."""
        lib.risk_engine_policies_changed(self._h)
        self._targets.seen_gen = _UNSEEN

    @_engine_call
    def sign_in(self, user_id: str, *, receipt: bool = False) -> Verdict:
        """Decide a sign-in (R-PO-1…11). On a store failure the error raised
        carries ``.verdict`` — block/store_error (fail closed, R-PO-9).
        ``receipt=True`` fills ``Verdict.receipt`` with a signed receipt
        (R-RC-1; the engine needs ``receipt_key``)."""
        return self._sign_in(user_id, receipt)

    def _sign_in(self, user_id: str, receipt: bool) -> Verdict:
        v = c_void_p()
        lib.risk_verdict_new(byref(v))
        try:
            if receipt:
                lib.risk_verdict_want_receipt(v, 1)
            self._follow_policies()
            try:
                lib.risk_engine_sign_in(self._h, enc(user_id, "user_id"), v)
            except RiskError as exc:
                exc.verdict = Verdict._from_handle(v.value)  # type: ignore[attr-defined]
                raise
            return Verdict._from_handle(v.value)
        finally:
            lib.risk_verdict_free(v)

    @_engine_call
    def sign_in_many(self, user_ids: Iterable[str]) -> List[Verdict]:
        """Decide many sign-ins at once, each as :meth:`sign_in` decides it
        (``risk_engine_sign_in_bulk``: the store fetches the users ahead
        of their lookups, so a decision costs less than one call each).
        Returns the verdicts in order. If any sign-in failed, raises the
        first failure's error with ``.verdicts`` attached: every verdict,
        the failed ones block/store_error (fail closed, R-PO-9)."""
        ids = list(id_tuple(user_ids, "user_ids"))
        if not ids:
            return []
        arr = (c_char_p * len(ids))(*[enc(u, "user_ids") for u in ids])
        if self._targets.adapter is not None:
            # A host store gains nothing from the bulk call (its hint is for
            # C stores) and one call each keeps each failure's message and
            # the store's exception chained to it.
            verdicts: List[Verdict] = []
            first: Optional[RiskError] = None
            for u in ids:
                try:
                    verdicts.append(self._sign_in(u, False))
                except RiskError as exc:
                    verdicts.append(exc.verdict)  # type: ignore[attr-defined]
                    first = first or exc
            if first is not None:
                first.verdicts = verdicts  # type: ignore[attr-defined]
                raise first
            return verdicts
        handles = (c_void_p * len(ids))()
        codes = (c_int * len(ids))()
        try:
            for i in range(len(ids)):
                v = c_void_p()
                lib.risk_verdict_new(byref(v))
                handles[i] = v.value
            self._follow_policies()
            lib.risk_engine_sign_in_bulk(self._h, arr, len(ids), handles, codes)
            verdicts = [Verdict._from_handle(handles[i]) for i in range(len(ids))]
        finally:
            for h in handles:
                lib.risk_verdict_free(h)
        for i, code in enumerate(codes):
            if code != 0:
                exc = _item_error(code, ids[i])
                exc.verdicts = verdicts  # type: ignore[attr-defined]
                raise exc
        return verdicts

    # -- the four ways to close risk
    @_engine_call
    def password_changed(self, user_id: str, *, secure: bool, reset: bool = False,
                         actor: Optional[str] = None) -> None:
        """Report a password change (R-PO-10, R-PO-11): ``secure`` means the
        user passed MFA; ``reset`` marks a self-service reset."""
        kind = (PasswordChange.INSECURE if not secure else
                PasswordChange.SECURE_RESET if reset else PasswordChange.SECURE_CHANGE)
        lib.risk_engine_password_changed(self._h, self._a(actor), enc(user_id, "user_id"),
                                         c_value(PasswordChange, kind, "kind"))

    @_engine_call
    def generate_temporary_password(self, user_id: str, *,
                                    actor: Optional[str] = None) -> str:
        """Generate a temporary password (R-PW-1); returned once, never stored."""
        buf = ctypes.create_string_buffer(256)
        lib.risk_engine_temporary_password(self._h, self._a(actor), enc(user_id, "user_id"),
                                           buf, len(buf))
        try:
            return buf.value.decode("ascii")
        finally:
            ctypes.memset(buf, 0, len(buf))

    @_engine_call
    def require_password_reset(self, user_id: str, *, actor: Optional[str] = None) -> None:
        """Require a secure reset (R-PW-2): ``MfaNotRegistered`` without MFA."""
        lib.risk_engine_require_reset(self._h, self._a(actor), enc(user_id, "user_id"))

    @overload
    def dismiss(self, user_ids: str, *, note: Optional[str] = ...,
                actor: Optional[str] = ...) -> DismissResult: ...

    @overload
    def dismiss(self, user_ids: Iterable[str], *, note: Optional[str] = ...,
                actor: Optional[str] = ...) -> List[DismissResult]: ...

    @_engine_call
    def dismiss(self, user_ids: Union[str, Iterable[str]], *, note: Optional[str] = None,
                actor: Optional[str] = None) -> Union[DismissResult, List[DismissResult]]:
        """Dismiss all risk of one user (raises on failure) or of many users,
        each atomic on its own, with a result per user (R-DI-1…4). On the
        built-in stores many users go through ``risk_engine_dismiss_bulk``,
        which fetches and syncs ahead as :meth:`ingest_many` does."""
        if isinstance(user_ids, str):
            closed = c_uint32()
            lib.risk_engine_dismiss(self._h, self._a(actor), enc(user_ids, "user_id"),
                                    enc(note, "note"), byref(closed))
            return DismissResult(user_ids, closed.value)
        ids = list(user_ids)
        if not ids:
            return []
        arr = (c_char_p * len(ids))(*[enc(u, "user_ids") for u in ids])
        codes = (c_int * len(ids))()
        counts = (c_uint32 * len(ids))()
        if self._targets.adapter is not None:
            # A host store: one call each (as the bulk call does inside), so
            # that a failure keeps its message and the store's exception.
            lib.risk_engine_dismiss_bulk(self._h, self._a(actor), arr, 0, enc(note, "note"),
                                         codes, counts)  # checks actor and note only
            results: List[DismissResult] = []
            for i, u in enumerate(ids):
                closed = c_uint32()
                try:
                    lib.risk_engine_dismiss(self._h, self._a(actor), arr[i], enc(note, "note"),
                                            byref(closed))
                    results.append(DismissResult(u, closed.value))
                except RiskError as exc:
                    results.append(DismissResult(u, 0, exc))
            return results
        lib.risk_engine_dismiss_bulk(self._h, self._a(actor), arr, len(ids), enc(note, "note"),
                                     codes, counts)
        return [DismissResult(u, counts[i], None if codes[i] == 0 else
                              _item_error(codes[i], u))
                for i, u in enumerate(ids)]

    @_engine_call
    def resolve(self, event_id: str, *, note: Optional[str] = None,
                actor: Optional[str] = None) -> None:
        """Close an active event as resolved (R-EV-2)."""
        lib.risk_engine_resolve(self._h, self._a(actor), enc(event_id, "event_id"),
                                enc(note, "note"))

    @_engine_call
    def mark_false_positive(self, event_id: str, *, note: Optional[str] = None,
                            actor: Optional[str] = None) -> None:
        """Close an active event as a false positive; the feedback hook runs
        after commit (R-EV-2, R-IN-2)."""
        lib.risk_engine_false_positive(self._h, self._a(actor), enc(event_id, "event_id"),
                                       enc(note, "note"))

    @_engine_call
    def ignore(self, event_id: str, *, note: Optional[str] = None,
               actor: Optional[str] = None) -> None:
        """Close an active event as ignored; a non-empty note is required (R-EV-2)."""
        lib.risk_engine_ignore(self._h, self._a(actor), enc(event_id, "event_id"),
                               enc(note, "note"))

    @_engine_call
    def reactivate(self, event_id: str, *, note: Optional[str] = None,
                   actor: Optional[str] = None) -> None:
        """Reopen a manually closed event (R-EV-3, R-EV-4, R-EV-7)."""
        lib.risk_engine_reactivate(self._h, self._a(actor), enc(event_id, "event_id"),
                                   enc(note, "note"))

    @_engine_call
    def confirm_compromised(self, user_id: str, *, actor: Optional[str] = None) -> None:
        """Confirm a user compromised (R-US-3, R-SC-5)."""
        lib.risk_engine_confirm_compromised(self._h, self._a(actor), enc(user_id, "user_id"))

    @_engine_call
    def confirm_safe(self, user_id: str, *, actor: Optional[str] = None) -> None:
        """Confirm a user safe: active events close as false positives (R-US-4)."""
        lib.risk_engine_confirm_safe(self._h, self._a(actor), enc(user_id, "user_id"))

    # -- policies
    @_engine_call
    def set_policy(self, policy: Union[Policy, str], threshold: Optional[LevelLike] = None,
                   control: Any = None, *, mode: Any = "on", include: Iterable[str] = (),
                   exclude: Iterable[str] = (), actor: Optional[str] = None) -> Policy:
        """Add or replace a policy (R-OP-6): a :class:`Policy`, or its fields."""
        if not isinstance(policy, Policy):
            if threshold is None or control is None:
                raise InvalidArgument(-1, "policy: give a Policy, or threshold and control")
            policy = Policy(policy, threshold, control, mode, id_tuple(include, "include"),
                            id_tuple(exclude, "exclude"))
        h = _policy_handle(policy)
        try:
            lib.risk_engine_policy_set(self._h, self._a(actor), h)
        finally:
            lib.risk_policy_free(h)
        return policy

    @_engine_call
    def remove_policy(self, name: str, *, actor: Optional[str] = None) -> None:
        """Remove a policy (R-OP-6); ``NotFound`` if there is none."""
        lib.risk_engine_policy_remove(self._h, self._a(actor), enc(name, "name"))

    # -- queries
    def _collect(self, fn: Any, *args: Any) -> Iterator[Any]:
        box = _Box()
        fn(*args, c_void_p(id(box)))
        err, box.error = box.error, None
        if err is not None:
            try:
                raise err
            finally:
                del err  # no cycle through this frame (_ffi._check)
        return iter(box)

    @_engine_call
    def policies(self) -> Iterator[Policy]:
        """The policies, by name."""
        return self._collect(lib.risk_engine_policies, self._h, _VISIT_POLICY)

    @_engine_call
    def user(self, user_id: str) -> User:
        """One user as of now; ``NotFound`` if unknown."""
        out = c_void_p()
        lib.risk_engine_user(byref(out), self._h, enc(user_id, "user_id"))
        try:
            return User._from_handle(out.value)
        finally:
            lib.risk_user_free(out)

    @_engine_call
    def event(self, event_id: str) -> Event:
        """One event; ``NotFound`` if unknown."""
        out = c_void_p()
        lib.risk_engine_event(byref(out), self._h, enc(event_id, "event_id"))
        try:
            return Event._from_handle(out.value)
        finally:
            lib.risk_event_free(out)

    @_engine_call
    def events(self, user_id: str, *, active_only: bool = False) -> Iterator[Event]:
        """A user's events by detected_at, then id (R-OP-5)."""
        return self._collect(lib.risk_engine_events, self._h, enc(user_id, "user_id"),
                             _EVENTS_ACTIVE if active_only else 0, _VISIT_EVENT)

    @_engine_call
    def users(self, min_level: LevelLike = Level.NONE) -> Iterator[User]:
        """Users at or above a level, highest first, then by id (R-OP-5)."""
        return self._collect(lib.risk_engine_users, self._h, int(Level.parse(min_level, "min_level")),
                             _VISIT_USER)

    @_engine_call
    def history(self, user_id: Optional[str] = None, *, since: int = 0) -> Iterator[HistoryItem]:
        """A user's history in order, or (no user) the store-wide feed from
        sequence number ``since`` on, policy changes included (R-OP-5)."""
        since = unsigned(since, "since", 64)
        if user_id is None:
            return self._collect(lib.risk_engine_history_feed, self._h, since, _VISIT_HISTORY)
        items = self._collect(lib.risk_engine_history, self._h, enc(user_id, "user_id"),
                              _VISIT_HISTORY)
        return (i for i in items if i.seq >= since) if since else items

    @_engine_call
    def explain(self, user_id: str) -> Explanation:
        """Why the user's level is what it is now (R-SC-6, R-SC-8)."""
        out = c_void_p()
        lib.risk_engine_explain(byref(out), self._h, enc(user_id, "user_id"))
        try:
            return Explanation._from_handle(out.value)
        finally:
            lib.risk_explanation_free(out)

    # -- beyond the hosted services (SPEC §10)
    @_engine_call
    def what_if(self, policies: Iterable[Policy], at: Optional[datetime] = None) -> WhatIf:
        """What a candidate policy set would decide for every stored user at
        ``at`` (default now); changes nothing (R-WI-1, R-WI-2)."""
        handles: List[int] = []
        try:
            for p in policies:
                if not isinstance(p, Policy):
                    raise InvalidArgument(-1, "policies: expected Policy objects")
                handles.append(_policy_handle(p))
            arr = (c_void_p * max(1, len(handles)))(*handles)
            out = c_void_p()
            when = lib.risk_engine_now(self._h) if at is None else to_ms(at, "at")
            lib.risk_engine_what_if(byref(out), self._h, arr, len(handles), when)
        finally:
            for h in handles:
                lib.risk_policy_free(h)
        try:
            return WhatIf._from_handle(out.value)
        finally:
            lib.risk_what_if_free(out)

    @_engine_call
    def history_anchor(self) -> Anchor:
        """The anchor of the current history, to keep elsewhere (R-AU-3)."""
        c = _ffi.Anchor()
        lib.risk_engine_history_anchor(self._h, byref(c))
        return Anchor._from_c(c)

    @_engine_call
    def verify_history(self, anchor: Optional[Anchor] = None) -> None:
        """Verify every history chain, and against ``anchor`` if given
        (R-AU-1…3). Raises ``VerificationError`` whose ``bad_seq`` is the
        first item that does not match (0 when it is not one item)."""
        bad = c_uint64()
        c = anchor._to_c() if anchor is not None else None
        try:
            lib.risk_engine_verify_history(self._h, byref(c) if c is not None else None,
                                           byref(bad))
        except RiskError as exc:
            exc.bad_seq = bad.value  # type: ignore[attr-defined]
            raise

    def verify_receipt(self, receipt: str, key: Optional[bytes] = None) -> bool:
        """Whether a sign-in receipt is authentic under ``key`` (default: this
        engine's ``receipt_key``) and unaltered in every field (R-RC-1)."""
        if key is not None and not isinstance(key, (bytes, bytearray, memoryview)):
            raise InvalidArgument(-1, f"key: expected bytes, got {type(key).__name__}")
        key = self._receipt_key if key is None else bytes(key)
        if not key:
            raise InvalidArgument(-1, "key: no receipt key given or configured")
        try:
            lib.risk_receipt_verify(enc(receipt, "receipt"), key, len(key))
        except RiskError as exc:
            if exc.code == -16:
                return False
            raise
        return True

    # -- maintenance
    @_engine_call
    def expire(self) -> Tuple[int, int]:
        """The aging sweep (R-SC-2): returns (users changed, events closed)."""
        users, events = c_uint64(), c_uint64()
        lib.risk_engine_expire(self._h, byref(users), byref(events))
        return users.value, events.value

    @_engine_call
    def compact(self) -> None:
        """Compact the store, if it can (``Unsupported`` otherwise)."""
        lib.risk_engine_compact(self._h)

    @_engine_call
    def sync(self) -> None:
        """Make every operation that returned durable now: a journal writes
        its buffer and syncs, whatever its durability (``Unsupported`` for
        stores without such a step: memory, host stores)."""
        lib.risk_engine_sync(self._h)

    @_engine_call
    def backup(self, path: "os.PathLike[str] | str") -> None:
        """Write a consistent copy of the store to ``path``, if it can."""
        lib.risk_engine_backup(self._h, enc(os.fspath(path), "path"))

    def __repr__(self) -> str:
        return f"<librisk.Engine {'closed' if self.closed else 'open'}>"
