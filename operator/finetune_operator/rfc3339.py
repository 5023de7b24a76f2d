"""RFC 3339 timestamps as Kubernetes writes and reads them (pure).

The operator writes whole seconds in UTC (`2026-11-23T16:00:00Z`, metav1.Time); it reads any RFC 3339
date-time: fractions of a second (`.123456789`, nanoseconds cut to microseconds), `z`/`t` in either case and
numeric offsets (`+02:00`). Anything else reads as None, never an exception: one job's odd timestamp must not
stop the work on the others (finetune_operator.sweep).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))")


def render(moment: datetime) -> str:
    """Whole seconds in UTC, as metav1.Time writes them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: object) -> datetime | None:
    """An aware datetime for an RFC 3339 date-time, else None."""
    if not isinstance(text, str):
        return None
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_hours, off_minutes = match.groups()
    try:
        offset = timedelta(0) if zulu else timedelta(hours=int(off_hours), minutes=int(off_minutes))
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second), 59),  # a leap second reads as :59
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
        return moment - offset if sign == "+" else moment + offset
    except (ValueError, OverflowError):
        return None


def after(moment: datetime, seconds: float) -> datetime | None:
    """`moment + seconds`, or None when that is past year 9999 (a TTL nobody will live to see)."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return None
