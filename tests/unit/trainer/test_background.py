import threading
from typing import Any

from finetune_trainer import report
from finetune_trainer.background import BackgroundSend, run_write


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


def test_handed_to_the_background_a_429_still_stretches_the_report_interval_and_the_caller_never_waits() -> None:
    release = threading.Event()
    statuses: list[dict[str, object]] = []
    histories: list[dict[str, object]] = []

    def throttled(patch: dict[str, object]) -> None:
        release.wait(timeout=10)
        statuses.append(patch)
        raise report.Refused("throttled", 429)

    reporter = report.Reporter(send=throttled, send_history=histories.append, interval=10.0)
    reporter.handoff = BackgroundSend(run_write)
    # forced, as the final report: status and history both go out
    assert reporter.report(
        {"step": 1}, "Training", 0.0, force=True, history=lambda: {"series": {"trainLoss": [[1, 2.0]]}}
    )
    assert reporter.interval == 10.0  # the write is still out: the caller went on without waiting for it
    release.set()
    assert isinstance(reporter.handoff, BackgroundSend) and reporter.handoff.flush(timeout=5)
    assert statuses == [{"step": 1}]
    assert histories == [{"data": {"history.json": '{"series":{"trainLoss":[[1,2.0]]}}'}}]
    assert reporter.interval == 18.0  # doubled by the refused status, relaxed 10% by the quick history write
    assert not reporter.report({"step": 2}, "Training", 15.0)  # not due under the stretched interval
