import json
from pathlib import Path

import pytest

from finetune_operator.api.contract import (
    EXIT_CODES,
    REASONS,
    USER_ERROR_EXIT_CODES,
    ExitCode,
    FailureKind,
    Reason,
    exit_code_for,
    failure_kind_for,
    fallback_reason,
)
from finetune_operator.api.termination import MAX_BYTES, TerminationMessage
from finetune_trainer import termination

failure = TerminationMessage.failure


def render(payload: dict[str, object] | TerminationMessage) -> str:
    message = payload if isinstance(payload, TerminationMessage) else TerminationMessage.model_validate(payload)
    return message.render()


def test_failure_payload_carries_kind_from_reason() -> None:
    payload = failure(Reason.SOURCE_NOT_FOUND, "no files match /mnt/x/*.jsonl").to_wire()
    assert payload == {
        "outcome": "Failed",
        "reason": "SourceNotFound",
        "failureKind": "User",
        "message": "no files match /mnt/x/*.jsonl",
    }
    assert failure(Reason.INTERNAL_ERROR, "boom").failure_kind is FailureKind.SYSTEM


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
    assert json.loads(render(payload)) == payload


@pytest.mark.parametrize("char", ["x", "é", "😀", '"'])
def test_long_message_is_shortened_to_valid_json_within_limit(char: str) -> None:
    payload = failure(Reason.CURATION_FAILED, char * 10_000)
    text = render(payload)
    assert len(text.encode("utf-8")) <= MAX_BYTES
    parsed = json.loads(text)
    assert parsed["reason"] == "CurationFailed"
    assert parsed["message"].endswith("…")
    # As much of the message as fits is kept, not an arbitrary small prefix.
    assert len(text.encode("utf-8")) > MAX_BYTES - 8


def test_oversized_nested_values_are_dropped_keeping_scalars() -> None:
    payload = {"outcome": "Succeeded", "hyperparameters": {"note": "v" * 10_000}}
    parsed = json.loads(render(payload))
    assert parsed == {"outcome": "Succeeded", "truncated": True}


def test_oversized_lineage_goes_first_so_the_model_block_survives() -> None:
    # A long loraTargetModules list must not cost the operator the model folder it registers.
    model = {"path": "model", "format": "safetensors", "adapter": True}
    payload = {"outcome": "Succeeded", "model": model, "hyperparameters": {"loraTargetModules": ["q_proj"] * 2000}}
    parsed = json.loads(render(payload))
    assert parsed == {"outcome": "Succeeded", "model": model, "truncated": True}


def test_a_long_tracking_reference_is_dropped_before_the_model_and_metrics() -> None:
    long_run = {"runId": "r", "url": "https://mlflow.example/" + "p" * 3000, "degraded": "d" * 512}
    payload = {
        "outcome": "Succeeded",
        "metrics": {"evalLoss": 1.5},
        "model": {"path": "model", "format": "safetensors"},
        "hyperparameters": {"epochs": 3, "note": "h" * 600},
        "tracking": {"mlflow": long_run},
    }
    parsed = json.loads(render(payload))
    assert parsed == {**{k: v for k, v in payload.items() if k != "tracking"}, "truncated": True}


def test_write_uses_environment_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "termination-log"
    monkeypatch.setenv(termination.ENV_VAR, str(target))
    termination.write(failure(Reason.INTERNAL_ERROR, "boom"))
    assert json.loads(target.read_text(encoding="utf-8"))["reason"] == "InternalError"


def test_unwritable_path_warns_instead_of_raising(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    termination.write(TerminationMessage(outcome="Succeeded"), path=str(tmp_path / "missing-dir" / "log"))
    assert "cannot write termination message" in capsys.readouterr().err


def test_user_error_exit_codes_fail_the_job_and_name_a_contract_reason() -> None:
    assert USER_ERROR_EXIT_CODES == (10, 11, 12, 13)
    for code in USER_ERROR_EXIT_CODES:
        reason = fallback_reason(code)
        assert reason in REASONS, f"exit {code} falls back to a reason outside the contract"
        assert exit_code_for(reason) == code


@pytest.mark.parametrize("code", [None, 0, 1, 20, 137, 143, 255])
def test_codes_that_are_not_user_errors_have_no_fallback_reason(code: int | None) -> None:
    assert fallback_reason(code) is None


def test_every_reason_has_an_exit_code_of_the_table_and_advice() -> None:
    for reason, rule in REASONS.items():
        assert rule.exit_code in EXIT_CODES and rule.exit_code is not ExitCode.SUCCEEDED, reason
        assert rule.advice and rule.meaning, reason
