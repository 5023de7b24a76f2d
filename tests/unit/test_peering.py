from datetime import UTC, datetime

from finetune_operator.peering import outranked

NOW = datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC)


def peer(priority: int, lastseen: str = "2026-11-23T15:59:50+00:00", lifetime: int = 60) -> dict[str, object]:
    return {"priority": priority, "lastseen": lastseen, "lifetime": lifetime}


def test_a_live_peer_with_a_higher_priority_outranks_us() -> None:
    assert outranked({"me@host": peer(10), "other@host": peer(20)}, own_priority=10, now=NOW)


def test_our_own_entry_and_lower_peers_do_not() -> None:
    assert not outranked({"me@host": peer(30), "other@host": peer(20)}, own_priority=30, now=NOW)


def test_a_dead_peer_does_not() -> None:
    stale = peer(99, lastseen="2026-11-23T15:58:00+00:00", lifetime=60)
    assert not outranked({"me": peer(10), "dead": stale}, own_priority=10, now=NOW)


def test_no_peering_object_means_standalone() -> None:
    assert not outranked({}, own_priority=10, now=NOW)


def test_garbage_entries_are_ignored() -> None:
    assert not outranked({"x": "nope", "y": peer(99, lastseen="not a time")}, own_priority=10, now=NOW)
