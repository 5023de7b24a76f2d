"""Escaping and formatting for server-rendered HTML (pure).

Every value from the API (names, labels, messages, log lines, session-derived text) goes through `esc`;
`Html` marks strings that are already markup, so composing pieces never escapes twice nor forgets to.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from urllib.parse import quote, urlencode


class Html(str):
    """A string that is markup already (built by this package, its inputs escaped)."""


def esc(value: object) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: list[Html] | list[str]) -> Html:
    return Html("".join(esc(p) for p in parts))


def number(value: object) -> str:
    """Short, readable numbers: 6.3209, 0.001, 1.2e-05, 5,400."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-" if value is None else str(value)
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) >= 1000):
        return f"{int(value):,}"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and abs(value) < 0.001:
        return f"{value:.2e}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or not math.isfinite(seconds):
        return "-"
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 90 * 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(timestamp: str | None, now: datetime) -> str:
    return since(parse_time(timestamp), now)


def since(moment: datetime | None, now: datetime) -> str:
    """The time from `moment` to `now`, as `duration` writes it; "-" without a moment."""
    return "-" if moment is None else duration((now - moment.astimezone(UTC)).total_seconds())


def url(*segments: object, query: dict[str, str] | None = None, anchor: str = "") -> str:
    """A site-relative URL with each path segment and query value percent-encoded."""
    path = "/" + "/".join(quote(str(s), safe="") for s in segments)
    return path + (f"?{urlencode(query)}" if query else "") + (f"#{quote(anchor, safe='')}" if anchor else "")
