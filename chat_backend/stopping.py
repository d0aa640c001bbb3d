"""stopping: how a Stop reaches a retry's back-off, shared by stream.py (which sets it) and retry.py (which waits).

Its own module so that neither imports the other: urllib3 sleeps before a retry deep inside `Session.post`,
where only a context variable set around the call can tell it that the reply was stopped meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from urllib3.exceptions import HTTPError

# Set around one reply's `post`: says whether that reply was stopped.
STOPPED: ContextVar[Callable[[], bool] | None] = ContextVar("stopped", default=None)


class StoppedDuringBackOff(HTTPError):
    """The reply was stopped while a retry was waited for: the retry is not sent."""


def in_back_off(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) is a Stop that came while a retry was waited for."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, StoppedDuringBackOff):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
