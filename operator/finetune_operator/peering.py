"""Whether this replica is the active one, read from Kopf's peering object (pure).

Kopf pauses a replica's watches when a live peer with a higher priority exists, but not the operator's own
background sweep. The sweep therefore applies Kopf's rule itself before acting: the peering object's status
maps each peer to `{priority, lifetime, lastseen}`; a peer is live until `lastseen + lifetime`. Priorities
are drawn at random from 2**31 values, so a higher one is another replica's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any


def outranked(peers: Mapping[str, Any], own_priority: int, now: datetime) -> bool:
    """True when a live peer has a higher priority than ours: Kopf has paused this replica."""
    for info in peers.values():
        if not isinstance(info, Mapping) or int(info.get("priority") or 0) <= own_priority:
            continue
        try:
            lastseen = datetime.fromisoformat(str(info.get("lastseen")))
        except ValueError:
            continue
        if lastseen + timedelta(seconds=int(info.get("lifetime") or 60)) > now:
            return True
    return False
