"""Exceptions: one base class, one subclass per ``RISK_E…`` code of librisk.h.

A failing C call raises the subclass of its code with the library's detailed
message (``risk_error_last()``), e.g. ``InvalidArgument("user_id: invalid
UTF-8 at byte 3")``.  Where a Python class of the standard library means the
same thing, the subclass derives from it too, so ``except MemoryError`` or
``except OSError`` keep working.
"""
from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "RiskError", "InvalidArgument", "OutOfMemory", "NotFound", "AlreadyExists",
    "TransitionError", "MfaNotRegistered", "UserDeleted", "Busy", "Corrupt",
    "StoreIOError", "Unsupported", "Conflict", "BufferTooSmall", "ReadOnly",
    "StoreError", "VerificationError", "error_for_code",
]


class RiskError(Exception):
    """Base of every librisk error.

    Attributes:
        code: the negative ``RISK_E…`` value.
        message: the detailed message naming the offending argument.
    """

    code: int = 0
    name: str = "RISK_E?"

    def __init__(self, code: Optional[int] = None, message: str = "") -> None:
        if isinstance(code, str) and not message:
            # RaiseError("text") from Python code (e.g. a host store).
            code, message = None, code
        if code is None:
            code = type(self).code
        self.code = int(code)
        self.message = message
        Exception.__init__(self, self.code, message)

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


def _sub(name: str, code: int, cname: str, *bases: type) -> Type[RiskError]:
    return type(name, (RiskError,) + bases,
                {"code": code, "name": cname, "__doc__": f"``{cname}`` ({code})."})


InvalidArgument = _sub("InvalidArgument", -1, "RISK_EINVAL", ValueError)
OutOfMemory = _sub("OutOfMemory", -2, "RISK_ENOMEM", MemoryError)
NotFound = _sub("NotFound", -3, "RISK_ENOTFOUND", LookupError)
AlreadyExists = _sub("AlreadyExists", -4, "RISK_EEXISTS")
TransitionError = _sub("TransitionError", -5, "RISK_ETRANSITION")
MfaNotRegistered = _sub("MfaNotRegistered", -6, "RISK_ENOMFA")
UserDeleted = _sub("UserDeleted", -7, "RISK_EDELETED")
Busy = _sub("Busy", -8, "RISK_EBUSY")
Corrupt = _sub("Corrupt", -9, "RISK_ECORRUPT")
StoreIOError = _sub("StoreIOError", -10, "RISK_EIO", OSError)
Unsupported = _sub("Unsupported", -11, "RISK_EUNSUPPORTED")
Conflict = _sub("Conflict", -12, "RISK_ECONFLICT")
BufferTooSmall = _sub("BufferTooSmall", -13, "RISK_ERANGE")
ReadOnly = _sub("ReadOnly", -14, "RISK_EREADONLY")
StoreError = _sub("StoreError", -15, "RISK_ESTORE")
VerificationError = _sub("VerificationError", -16, "RISK_EVERIFY")

_BY_CODE: Dict[int, Type[RiskError]] = {
    c.code: c for c in (InvalidArgument, OutOfMemory, NotFound, AlreadyExists,
                        TransitionError, MfaNotRegistered, UserDeleted, Busy, Corrupt,
                        StoreIOError, Unsupported, Conflict, BufferTooSmall, ReadOnly,
                        StoreError, VerificationError)
}


def error_for_code(code: int, message: str = "") -> RiskError:
    """The exception for a ``RISK_E…`` code (``RiskError`` for unknown codes)."""
    cls = _BY_CODE.get(code, RiskError)
    return cls(code, message)
