import json
from pathlib import Path

import pytest

from finetune_trainer import termination
from finetune_trainer.exitcodes import ExitCode, FailureKind, Reason, exit_code_for, failure_kind_for


def test_failure_payload_carries_kind_from_reason() -> None:
    payload = termination.failure(Reason.SOURCE_NOT_FOUND, "no files match /mnt/x/*.jsonl")
    assert payload == {
        "outcome": "Failed",
        "reason": "SourceNotFound",
        "failureKind": "User",
        "message": "no files match /mnt/x/*.jsonl",
    }
    assert termination.failure(Reason.INTERNAL_ERROR, "boom")["failureKind"] == "System"


@pytest.mark.parametrize(
    ("reason", "code", "kind"),
    [
        (Reason.CURATION_FAILED, ExitCode.USER_DATA_ERROR, FailureKind.USER),
        (Reason.NO_SAMPLES_AFTER_CURATION, 10, FailureKind.USER),
        (Reason.SOURCE_NOT_FOUND, 10, FailureKind.USER),
        (Reason.INVALID_MODEL, 11, FailureKind.USER),
        (Reason.CHECKPOINT_MISMATCH, 11, FailureKind.USER),
        (Reason.EVALUATION_GATE_FAILED, 12, FailureKind.USER),
        (Reason.INTERNAL_ERROR, 20, FailureKind.SYSTEM),
    ],
)
def test_every_reason_maps_to_the_contract_exit_code(reason: Reason, code: int, kind: FailureKind) -> None:
    assert exit_code_for(reason) == code
    assert failure_kind_for(reason) is kind


def test_small_payload_is_rendered_unchanged() -> None:
    payload = {"outcome": "Succeeded", "dataset": {"samples": 3}}
    assert json.loads(termination.render(payload)) == payload


@pytest.mark.parametrize("char", ["x", "é", "😀", '"'])
def test_long_message_is_shortened_to_valid_json_within_limit(char: str) -> None:
    payload = termination.failure(Reason.CURATION_FAILED, char * 10_000)
    text = termination.render(payload)
    assert len(text.encode("utf-8")) <= termination.MAX_BYTES
    parsed = json.loads(text)
    assert parsed["reason"] == "CurationFailed"
    assert parsed["message"].endswith("…")
    # As much of the message as fits is kept, not an arbitrary small prefix.
    assert len(text.encode("utf-8")) > termination.MAX_BYTES - 8


def test_oversized_nested_values_are_dropped_keeping_scalars() -> None:
    payload = {"outcome": "Succeeded", "dataset": {f"k{i}": "v" * 50 for i in range(200)}}
    parsed = json.loads(termination.render(payload))
    assert parsed == {"outcome": "Succeeded", "truncated": True}


def test_write_uses_environment_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "termination-log"
    monkeypatch.setenv(termination.ENV_VAR, str(target))
    termination.write(termination.failure(Reason.INTERNAL_ERROR, "boom"))
    assert json.loads(target.read_text(encoding="utf-8"))["reason"] == "InternalError"


def test_unwritable_path_warns_instead_of_raising(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    termination.write({"outcome": "Succeeded"}, path=str(tmp_path / "missing-dir" / "log"))
    assert "cannot write termination message" in capsys.readouterr().err
