import threading
from typing import Any

from finetune_trainer.train.background import BackgroundSend


def test_a_slow_api_server_never_blocks_the_caller_and_only_the_latest_patch_waits() -> None:
    release = threading.Event()
    started = threading.Event()
    sent: list[dict[str, Any]] = []

    def slow(patch: dict[str, Any]) -> None:
        started.set()
        release.wait(timeout=10)
        sent.append(patch)

    send = BackgroundSend(slow)
    send({"step": 1})
    assert started.wait(timeout=5)  # step 1 is in flight, blocked on the "server"
    send({"step": 2})  # returns at once although the sender is blocked
    send({"step": 3})  # replaces step 2, not yet sent
    assert not send.flush(timeout=0.05)
    release.set()
    assert send.flush(timeout=5)
    assert sent == [{"step": 1}, {"step": 3}]


def test_failures_are_logged_and_later_patches_still_go_out() -> None:
    sent: list[dict[str, Any]] = []

    def flaky(patch: dict[str, Any]) -> None:
        if patch["step"] == 1:
            raise RuntimeError("HTTP 503")
        sent.append(patch)

    send = BackgroundSend(flaky)
    send({"step": 1})
    assert send.flush(timeout=5)
    send({"step": 2})
    assert send.flush(timeout=5)
    assert sent == [{"step": 2}]
