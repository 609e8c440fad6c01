"""What to do after one delivery attempt: done, final failure, or retry later.

Any 2xx is success. A 3xx is final (redirects are never followed: the receiver must give
its real URL) and so is a 4xx (the receiver refused; sending the same again cannot help).
5xx answers, timeouts and network errors are retried with exponential backoff and full
jitter, at most ``max_attempts`` times in all and never at or after ``deliver_until``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from backchannel.settings import OutboxSettings


class Verdict(StrEnum):
    DELIVERED = "delivered"
    FINAL = "final"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    retry_at: float | None = None


def classify_status(status: int) -> tuple[Verdict, str]:
    if 200 <= status < 300:
        return Verdict.DELIVERED, ""
    if 300 <= status < 400:
        return Verdict.FINAL, f"HTTP {status}: redirects are not followed"
    if 400 <= status < 500:
        return Verdict.FINAL, f"HTTP {status}: refused by the receiver"
    return Verdict.RETRY, f"HTTP {status}"


def backoff_delay(attempt: int, settings: OutboxSettings, jitter: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(max, base * 2 ** (attempt - 1))]; ``jitter()`` is a
    number in [0, 1). ``attempt`` is the number of the attempt that just failed."""
    ceiling = min(
        settings.backoff_max_seconds, settings.backoff_base_seconds * 2.0 ** (attempt - 1)
    )
    return ceiling * jitter()


def after_failure(
    attempt: int,
    reason: str,
    now: float,
    deliver_until: float | None,
    settings: OutboxSettings,
    jitter: Callable[[], float],
) -> Decision:
    """A retryable failure of attempt number ``attempt``: retry, or give up."""
    if attempt >= settings.max_attempts:
        return Decision(Verdict.FINAL, f"gave up after {attempt} attempts (last: {reason})")
    retry_at = now + backoff_delay(attempt, settings, jitter)
    if deliver_until is not None and retry_at >= deliver_until:
        return Decision(Verdict.FINAL, f"request expired (last: {reason})")
    return Decision(Verdict.RETRY, reason, retry_at)
