"""Structured JSON logs (structlog + orjson). Secrets never reach a log line: callers log
references (request refs, client ids), never tokens, secrets or auth_req_ids.

The access line (one per HTTP request) skips structlog's processor chain: with JSON logs on,
``log_request`` builds the very line structlog would render (same fields, same order) and
writes it in one flushed write, so an operator tailing the logs sees it at once."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Protocol

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}  # fmt: skip
ACCESS_EVENT = "request"


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


class AccessLog(Protocol):
    def request(self, method: str, path: str, status: int, duration_ms: float) -> None: ...


class StructlogAccessLog:
    """Through structlog: human-readable logs, or before ``configure_logging`` ran."""

    def __init__(self) -> None:
        self._log = get_logger("backchannel.access")

    def request(self, method: str, path: str, status: int, duration_ms: float) -> None:
        self._log.info(
            ACCESS_EVENT, method=method, path=path, status=status, duration_ms=duration_ms
        )


class JsonAccessLog:
    """The line ``merge_contextvars``, ``add_log_level``, ``TimeStamper`` and the JSON
    renderer of ``configure_logging`` produce, in one write to the current ``sys.stdout``
    (where ``print`` writes, as structlog's ``PrintLogger`` does), flushed: a line never
    waits in a buffer."""

    def request(self, method: str, path: str, status: int, duration_ms: float) -> None:
        line: dict[str, Any] = {"method": method, "path": path, "status": status,
                                "duration_ms": duration_ms, "event": ACCESS_EVENT}  # fmt: skip
        for name, value in structlog.contextvars.get_contextvars().items():
            line.setdefault(name, value)
        line["level"] = "info"
        line["timestamp"] = utc_timestamp()
        stream = sys.stdout
        if stream is None:  # print() writes nothing then either
            return
        stream.write(orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE).decode())
        stream.flush()


class NoAccessLog:
    """The level is above info: structlog would drop the line."""

    def request(self, method: str, path: str, status: int, duration_ms: float) -> None:
        return None


_access_log: AccessLog = StructlogAccessLog()
_second_shown: tuple[int, str] = (-1, "")


def utc_timestamp() -> str:
    return iso_utc(time.time_ns())


def iso_utc(unix_nanoseconds: int) -> str:
    """What structlog's ``TimeStamper(fmt="iso", utc=True)`` writes (``datetime.isoformat``
    in UTC, ``Z`` for ``+00:00``), the date and time of a second formatted once."""
    global _second_shown
    second, nanoseconds = divmod(unix_nanoseconds, 1_000_000_000)
    shown_second, shown = _second_shown
    if second != shown_second:
        shown = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_shown = (second, shown)
    microseconds = nanoseconds // 1000
    # isoformat leaves the fraction out when it is zero
    return f"{shown}.{microseconds:06d}Z" if microseconds else f"{shown}Z"


def log_request(method: str, path: str, status: int, duration_ms: float) -> None:
    _access_log.request(method, path, status, duration_ms)


def configure_logging(level: str = "info", json_logs: bool = True) -> None:
    global _access_log
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        # No file: PrintLogger then prints to the current sys.stdout, as the access line does
        # (a cached logger never holds a stream that was swapped out since, e.g. by a test).
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    if _LEVELS[level] > logging.INFO:
        _access_log = NoAccessLog()
    elif json_logs:
        _access_log = JsonAccessLog()
    else:
        _access_log = StructlogAccessLog()
