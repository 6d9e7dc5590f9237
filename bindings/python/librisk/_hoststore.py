"""Adapter: a Python object implementing stores.HostStore → struct risk_store.

The CFUNCTYPE thunks reach the adapter (and so the store object) only through
a weak reference: the engine's ``weakref.finalize`` keeps the thunks and the
table alive until risk_engine_free() returned, so C never calls a freed
thunk, without keeping the store object, which may refer back to the engine,
alive. The Engine holds the adapter strongly.

A callback never lets an exception escape into C: a RiskError with a
negative code returns that code, anything else RISK_ESTORE; the exception is
remembered (_ffi.note_callback_error) and chained onto the error the caller
sees, or, for KeyboardInterrupt/SystemExit, re-raised itself.
"""
from __future__ import annotations

import ctypes
import itertools
import sys
import threading
import traceback
import types
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional

from . import _ffi
from ._ffi import (STORE_VERSION, VISIT_FN, Store, dec, decode_handle, encode_handle, enc,
                   lib, unsigned)
from .errors import InvalidArgument, NotFound, RiskError
from .stores import EventRecord, HistoryRecord, PolicyRecord, UserRecord
from .types import Level

EINVAL, ENOTFOUND, ERANGE, ESTORE = -1, -3, -13, -15
_INT_MIN, _INT_MAX = -(2 ** 31), 2 ** 31 - 1
_FREE = {"user": "risk_user_free", "event": "risk_event_free", "policy": "risk_policy_free",
         "history": "risk_history_free"}

REQUIRED = ("begin", "commit", "rollback", "get_user", "put_user", "get_event", "put_event",
            "user_events", "reserve_seq", "append_history", "list_policies", "put_policy",
            "remove_policy", "get_meta", "put_meta")
OPTIONAL = ("close", "view_user", "list_users", "read_history", "compact", "backup")
#: Callbacks of store.h versions after STORE_VERSION: left NULL.
NEWER = ("prefetch_users", "prefetch_events")
VOID = ("rollback", "close")


def _message(text: str) -> bytes:
    """A message for risk_error_set(): any text (NULs, lone surrogates
    included) as at most 511 bytes of UTF-8, cut at a character."""
    raw = text.encode("utf-8", "backslashreplace").replace(b"\0", b"\\0")
    return raw[:511].decode("utf-8", "ignore").encode("utf-8")


def _failed(exc: BaseException, code: int, text: str, void: bool) -> Optional[int]:
    if code != ENOTFOUND:
        _ffi.note_callback_error(exc)
    lib.risk_error_set(code, _message(f"host store: {text}"))
    return None if void else code


def _guard(adapter: "weakref.ReferenceType[HostStoreAdapter]", name: str,
           void: bool = False) -> Callable[..., Any]:
    """The Python side of one C callback: calls ``adapter._<name>`` and turns
    every outcome into a return code."""
    method = "_" + name

    def run(args: Any) -> Optional[int]:
        try:
            target: Optional[HostStoreAdapter] = adapter()
            if target is None:
                # The engine is being collected in a reference cycle: the
                # store object went with it; nothing is left to call (close()).
                return None if void else lib.risk_error_set(
                    ESTORE, b"host store: the store object was garbage-collected")
            rc = getattr(target, method)(*args)
            if void:
                return None
            if rc is None:
                return 0
            if type(rc) is not int or not _INT_MIN <= rc <= _INT_MAX:
                return lib.risk_error_set(ESTORE, _message(
                    f"host store: {name} gave {rc!r}, not a result code"))
            return rc
        except RiskError as exc:
            # A RiskError of no (or a positive) code, e.g. RiskError("text"),
            # must not read as RISK_OK: it is a store failure (R-CC-2); nor
            # may an invalid argument inside the store (a record of the wrong
            # type) read as the caller's (R-IV-1).
            if exc.code < 0 and exc.code != EINVAL:
                return _failed(exc, exc.code, str(exc), void)
            return _failed(exc, ESTORE, str(exc) if exc.code < 0 else
                           exc.message or type(exc).__name__, void)
        except BaseException as exc:  # noqa: BLE001 — nothing may unwind into C
            return _failed(exc, ESTORE, f"{type(exc).__name__}: {exc}", void)

    def wrapper(*args: Any) -> Optional[int]:
        try:
            return run(args)
        except BaseException:  # noqa: BLE001 — the handlers failed (an interrupt in them)
            return None if void else ESTORE
    wrapper.__name__ = name
    return wrapper


def _visit_all(kind: str, blobs: Iterable[bytes], fn: int, arg: int) -> int:
    """Decode each blob into a borrowed handle and hand it to the C visitor."""
    visit = VISIT_FN(fn)
    free = getattr(lib, _FREE[kind])
    for blob in blobs:
        h = decode_handle(kind, blob)
        try:
            rc = visit(h, arg)
        finally:
            free(h)
        if rc:
            return rc
    return 0


#: How many adapters (engines) use each store object, by id(): a store
#: object shared by several engines (R-ST-6) is closed by the last of them,
#: never under the others' feet.
_sharers: Dict[int, int] = {}
_sharers_lock = threading.Lock()


def _share(key: int, delta: int) -> int:
    with _sharers_lock:
        n = _sharers.get(key, 0) + delta
        if n > 0:
            _sharers[key] = n
        else:
            _sharers.pop(key, None)
        return n


class HostStoreAdapter:
    """Builds the C callback table for a Python store object."""

    def __init__(self, obj: Any) -> None:
        missing = [m for m in REQUIRED if not callable(getattr(obj, m, None))]
        if missing:
            raise InvalidArgument(-1, "store: missing callbacks " + ", ".join(missing))
        self.obj = obj
        # The adapter holds obj, so its id stays its own while counted; the
        # count is given back once, by _close() or when the adapter goes.
        _share(id(obj), 1)
        self._unshare = weakref.finalize(self, _share, id(obj), -1)
        self.txns: Dict[int, Any] = {}
        self._ids = itertools.count(1)
        #: The thunks; they hold only a weak reference to this adapter.
        self.keep: List[Any] = []
        self.table = Store()
        self.table.version = STORE_VERSION
        self.table.ctx = None
        me = weakref.ref(self)
        for name, ftype in _ffi.STORE_CALLBACKS:
            if name in NEWER or (name in OPTIONAL and not callable(getattr(obj, name, None))):
                continue
            cfn = ftype(_guard(me, name, name in VOID))
            self.keep.append(cfn)
            setattr(self.table, name, cfn)

    # -- transactions
    def _begin(self, ctx: int, user_id: bytes, out: Any) -> None:
        txn = self.obj.begin(dec(user_id))
        key = next(self._ids)
        self.txns[key] = txn
        out[0] = key

    def _commit(self, ctx: int, key: int) -> None:
        self.obj.commit(self.txns.pop(key))

    def _rollback(self, ctx: int, key: int) -> None:
        self.obj.rollback(self.txns.pop(key, None))

    # -- records
    def _get(self, kind: str, getter: str, key: int, rid: bytes, out: Any) -> int:
        blob = getattr(self.obj, getter)(self.txns[key], dec(rid))
        if blob is None:
            return ENOTFOUND
        out[0] = decode_handle(kind, blob)
        return 0

    def _get_user(self, ctx: int, key: int, rid: bytes, out: Any) -> int:
        return self._get("user", "get_user", key, rid, out)

    def _get_event(self, ctx: int, key: int, rid: bytes, out: Any) -> int:
        return self._get("event", "get_event", key, rid, out)

    def _put_user(self, ctx: int, key: int, h: int) -> None:
        rec = UserRecord(id=dec(lib.risk_user_id(h)) or "", version=lib.risk_user_version(h),
                         level=Level(lib.risk_user_risk_level(h)),
                         data=encode_handle("user", h))
        self.obj.put_user(self.txns[key], rec)

    def _put_event(self, ctx: int, key: int, h: int) -> None:
        rec = EventRecord(id=dec(lib.risk_event_id(h)) or "",
                          user_id=dec(lib.risk_event_user_id(h)) or "",
                          active=lib.risk_event_state_get(h) == 0,
                          data=encode_handle("event", h))
        self.obj.put_event(self.txns[key], rec)

    def _user_events(self, ctx: int, key: int, uid: bytes, fn: int, arg: int) -> int:
        return _visit_all("event", self.obj.user_events(self.txns[key], dec(uid)), fn, arg)

    def _reserve_seq(self, ctx: int, key: int, out: Any) -> None:
        out[0] = unsigned(self.obj.reserve_seq(self.txns[key]), "reserve_seq result", 64)

    def _append_history(self, ctx: int, key: int, h: int) -> None:
        rec = HistoryRecord(seq=lib.risk_history_seq(h), user_id=dec(lib.risk_history_user_id(h)),
                            data=encode_handle("history", h))
        self.obj.append_history(self.txns[key], rec)

    def _list_policies(self, ctx: int, key: int, fn: int, arg: int) -> int:
        return _visit_all("policy", self.obj.list_policies(self.txns[key]), fn, arg)

    def _put_policy(self, ctx: int, key: int, h: int) -> None:
        rec = PolicyRecord(name=dec(lib.risk_policy_name(h)) or "",
                           data=encode_handle("policy", h))
        self.obj.put_policy(self.txns[key], rec)

    def _remove_policy(self, ctx: int, key: int, name: bytes) -> int:
        if self.obj.remove_policy(self.txns[key], dec(name)) is False:
            raise NotFound(f"policy {dec(name)!r}")
        return 0

    def _get_meta(self, ctx: int, key: int, mkey: bytes, buf: Any, cap: int, n: Any) -> int:
        value = self.obj.get_meta(self.txns[key], dec(mkey))
        if value is None:
            return ENOTFOUND
        value = bytes(value)
        n[0] = len(value)
        if len(value) > cap:
            return ERANGE
        ctypes.memmove(buf, value, len(value))
        return 0

    def _put_meta(self, ctx: int, key: int, mkey: bytes, buf: Any, n: int) -> None:
        self.obj.put_meta(self.txns[key], dec(mkey), ctypes.string_at(buf, n))

    # -- optional
    def _close(self, ctx: int) -> None:
        if self._unshare() == 0:  # the last engine on this store object
            self.obj.close()

    def _view_user(self, ctx: int, rid: bytes, fn: int, arg: int) -> int:
        blob = self.obj.view_user(dec(rid))
        if blob is None:
            return ENOTFOUND
        return _visit_all("user", [blob], fn, arg)

    def _list_users(self, ctx: int, min_level: int, fn: int, arg: int) -> int:
        return _visit_all("user", self.obj.list_users(Level(min_level)), fn, arg)

    def _read_history(self, ctx: int, uid: bytes, since: int, fn: int, arg: int) -> int:
        return _visit_all("history", self.obj.read_history(dec(uid), since), fn, arg)

    def _compact(self, ctx: int) -> None:
        self.obj.compact()

    def _backup(self, ctx: int, path: bytes) -> None:
        self.obj.backup(dec(path))


def report_unraisable(exc: BaseException, where: str) -> None:
    """A hook raised after commit: nothing to roll back, so report it, as
    Python reports an exception it cannot raise: to ``sys.unraisablehook``
    when the host installed one, else (CPython's own hook accepts only its
    private argument type) on ``sys.stderr`` in the same words."""
    msg = f"Exception ignored in librisk {where}"
    hook = getattr(sys, "unraisablehook", None)
    if hook is not None and hook is not getattr(sys, "__unraisablehook__", None):
        try:
            hook(types.SimpleNamespace(exc_type=type(exc), exc_value=exc,
                                       exc_traceback=exc.__traceback__, err_msg=msg,
                                       object=None))
            return
        except BaseException:  # noqa: B036 - a failing hook: print instead
            pass
    try:
        print(msg + ":", file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    except Exception:  # no stderr to write to: nothing else to do
        pass


