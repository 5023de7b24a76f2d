"""The trainer end to end on CPU: tiny-gpt on the synthetic dataset, through the real entrypoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune_trainer.train import checkpoints
from finetune_trainer.train.__main__ import main

from .conftest import FAST_TRAINING, write_dataset, write_job

SAVE_EVERY = "2"


@dataclass
class Run:
    workspace: Path
    returncode: int
    events: list[dict[str, Any]]
    termination: dict[str, Any]

    def losses(self) -> dict[int, float]:
        return {event["step"]: event["loss"] for event in self.events if event.get("event") == "train_log"}


def prepare(workspace: Path, **training: Any) -> Path:
    write_dataset(workspace, train=48, evaluation=8)
    return write_job(workspace, {**FAST_TRAINING, **training})


def environment(workspace: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FINETUNE_TERMINATION_LOG": str(workspace / "termination-log"),
        "FINETUNE_SAVE_STEPS": SAVE_EVERY,
    }


def start(workspace: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "finetune_trainer.train", "--config", str(workspace / "job.json")],
        env=environment(workspace),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(workspace: Path, process: subprocess.Popen[str]) -> Run:
    output, _ = process.communicate(timeout=600)
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    message = workspace / "termination-log"
    termination = json.loads(message.read_text()) if message.exists() else {}
    return Run(workspace, process.returncode, events, termination)


def wait_for_checkpoint(workspace: Path, process: subprocess.Popen[str]) -> checkpoints.Checkpoint:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        found = checkpoints.latest(workspace / "checkpoints")
        if found is not None:
            return found
        time.sleep(0.01)
    pytest.fail("the trainer wrote no checkpoint before finishing")


@pytest.fixture(scope="module")
def completed(tmp_path_factory: pytest.TempPathFactory) -> Run:
    workspace = tmp_path_factory.mktemp("completed")
    prepare(workspace)
    return finish(workspace, start(workspace))


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_training_succeeds_with_a_termination_message(completed: Run) -> None:
    assert completed.returncode == 0, completed.events[-3:]
    message = completed.termination
    assert message["outcome"] == "Succeeded"
    assert set(message["metrics"]) == {
        "trainLoss",
        "evalLoss",
        "perplexity",
        "tokensPerSecond",
        "evalExactMatch",
        "evalTokenF1",
    }
    assert message["progress"]["step"] == message["progress"]["totalSteps"] > 0
    assert message["progress"]["epoch"] == pytest.approx(3.0)
    assert message["model"] == {"path": "model", "format": "safetensors", "adapter": True, "merged": True}
    assert len((completed.workspace / "termination-log").read_bytes()) <= 4096
    # Lineage: the configuration training used (defaults resolved, hash as in model/ metadata), the base model.
    metadata = json.loads((completed.workspace / "model" / "metadata.json").read_text())
    assert message["hyperparameters"]["configHash"] == metadata["configHash"]
    assert message["hyperparameters"]["batchSize"] == metadata["training"]["batch_size"]
    assert message["baseModelDigest"].startswith("sha256:")


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_throughput_is_measured_up_to_the_last_step(completed: Run) -> None:
    """The collator builds batches ahead of training: counting built batches read 0 tokens/s at the end."""
    rates = [event["tokensPerSecond"] for event in completed.events if event.get("event") == "train_log"]
    assert len(rates) >= 9 and all(rate > 0 for rate in rates), rates
    assert completed.termination["metrics"]["tokensPerSecond"] == rates[-1] > 0


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_loss_decreases(completed: Run) -> None:
    losses = list(completed.losses().values())
    assert len(losses) >= 9
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.6 * first, losses


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_outputs_load_back_and_generate(completed: Run) -> None:
    from peft import AutoPeftModelForCausalLM

    folder = completed.workspace / "model"
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    prompt = tokenizer(
        "### Instruction:\nRun these steps in reverse order: lint build\n\n### Response:\n", return_tensors="pt"
    )
    models: list[Any] = [
        AutoPeftModelForCausalLM.from_pretrained(folder, local_files_only=True),
        AutoModelForCausalLM.from_pretrained(folder / "merged", local_files_only=True),
    ]
    for model in models:
        generated = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert generated.shape[1] > prompt["input_ids"].shape[1]
    metadata = json.loads((folder / "metadata.json").read_text())
    config = next(event for event in completed.events if event.get("event") == "config")
    assert metadata["configHash"] == config["configHash"]
    assert metadata["dataset"]["trainSamples"] == 48 and len(metadata["dataset"]["sha256"]) == 64
    assert metadata["baseModel"] == {"name": "tiny-gpt", "source": "builtin:tiny-gpt"}
    assert metadata["metrics"] == completed.termination["metrics"]


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_merged_weights_equal_base_plus_adapter(completed: Run) -> None:
    from peft import AutoPeftModelForCausalLM

    folder = completed.workspace / "model"
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    adapter: Any = AutoPeftModelForCausalLM.from_pretrained(folder, local_files_only=True)
    full: Any = AutoModelForCausalLM.from_pretrained(folder / "merged", local_files_only=True)
    with torch.no_grad():
        adapted, merged = adapter.eval()(input_ids=ids).logits, full.eval()(input_ids=ids).logits
    torch.testing.assert_close(adapted, merged, rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_checkpoints_tensorboard_and_json_logs(completed: Run) -> None:
    sealed = sorted(path.name for path in (completed.workspace / "checkpoints").glob("checkpoint-*"))
    assert 0 < len(sealed) <= 3
    assert all(checkpoints.read_complete(completed.workspace / "checkpoints" / name) for name in sealed)
    assert list((completed.workspace / "tensorboard").glob("events.out.tfevents.*"))
    names = {event.get("event") for event in completed.events}
    assert {"config", "train_log", "checkpoint_saved", "evaluation", "model_saved", "succeeded"} <= names


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_killed_run_resumes_at_the_saved_step_with_identical_losses(completed: Run, tmp_path: Path) -> None:
    prepare(tmp_path)
    first = start(tmp_path)
    saved = wait_for_checkpoint(tmp_path, first)
    first.kill()  # SIGKILL: no chance to clean up
    first.wait()
    total = completed.termination["progress"]["totalSteps"]
    assert saved.step < total, "the run finished before it could be killed"
    assert not (tmp_path / "model").exists()

    resumed = finish(tmp_path, start(tmp_path))
    assert resumed.returncode == 0, resumed.events[-3:]
    resume_event = next(event for event in resumed.events if event.get("event") == "resuming")
    assert resume_event["step"] >= saved.step
    after = {step: loss for step, loss in resumed.losses().items()}
    assert min(after) == resume_event["step"] + 1 and max(after) == total
    reference = completed.losses()
    for step, loss in after.items():
        assert loss == pytest.approx(reference[step], rel=1e-5, abs=1e-6), step
    for metric in ("trainLoss", "evalLoss"):
        assert resumed.termination["metrics"][metric] == pytest.approx(
            completed.termination["metrics"][metric], rel=1e-5
        )


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_sigterm_saves_a_checkpoint_and_exits(tmp_path: Path) -> None:
    prepare(tmp_path)
    process = start(tmp_path)
    first = wait_for_checkpoint(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    run = finish(tmp_path, process)
    assert run.returncode == 143
    stopped = next(event for event in run.events if event.get("event") == "sigterm")
    latest = checkpoints.latest(tmp_path / "checkpoints")
    assert latest is not None and latest.step == stopped["step"] >= first.step
    assert run.termination == {}  # neither success nor failure: the next attempt resumes


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
def test_changed_config_refuses_to_resume(completed: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(tmp_path)
    source = checkpoints.latest(completed.workspace / "checkpoints")
    assert source is not None
    (tmp_path / "checkpoints").mkdir()
    subprocess.run(["cp", "-a", str(source.path), str(tmp_path / "checkpoints")], check=True)
    write_job(tmp_path, {**FAST_TRAINING, "learningRate": 0.001})
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    assert main(["--config", str(tmp_path / "job.json")]) == 11
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["reason"] == "CheckpointMismatch"
    assert "changed: learning_rate" in message["message"]


def test_evaluation_gate_fails_full_fine_tuning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(tmp_path)
    write_job(tmp_path, {**FAST_TRAINING, "method": "full", "epochs": 1}, evaluation={"maxEvalLoss": 0.01})
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    assert main(["--config", str(tmp_path / "job.json")]) == 12
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (message["outcome"], message["reason"], message["failureKind"]) == ("Failed", "EvaluationGateFailed", "User")
    assert message["message"].startswith("evalLoss ") and message["message"].endswith(" > maxEvalLoss 0.01")
    # The model is kept for inspection even though it is not good enough.
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "model" / "metadata.json").read_text())["model"]["adapter"] is False


@pytest.mark.parametrize(
    ("change", "code", "reason"),
    [
        ("no-dataset", 10, "CurationFailed"),
        ("empty-train", 10, "NoSamplesAfterCuration"),
        ("missing-model", 11, "InvalidModel"),
        ("not-a-model", 11, "InvalidModel"),
    ],
)
def test_user_errors_exit_with_their_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, code: int, reason: str
) -> None:
    job = prepare(tmp_path)
    document = json.loads(job.read_text())
    if change == "no-dataset":
        (tmp_path / "dataset" / "train.jsonl").unlink()
    elif change == "empty-train":
        write_dataset(tmp_path, train=0, evaluation=8)
    else:
        folder = tmp_path / "base"
        if change == "not-a-model":
            folder.mkdir()
            (folder / "config.json").write_text("{}")
        document["spec"]["baseModel"] = {"name": "llama", "path": "/models/llama"}
        document["paths"]["baseModel"] = str(folder)
        job.write_text(json.dumps(document))
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    assert main(["--config", str(job)]) == code
    assert json.loads((tmp_path / "termination-log").read_text())["reason"] == reason


@pytest.mark.slow  # two training processes
def test_distributed_data_parallel_on_cpu(tmp_path: Path) -> None:
    """The multi-GPU path (supervised ranks + DDP) with the gloo backend: barriers, per-rank RNG, rank-0 writes."""
    prepare(tmp_path, batchSize=2, epochs=1)
    process = subprocess.Popen(
        [sys.executable, "-m", "finetune_trainer.train", "--config", str(tmp_path / "job.json")],
        env={**environment(tmp_path), "FINETUNE_PROCESSES": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = finish(tmp_path, process)
    assert run.returncode == 0, run.events[-3:]
    assert run.termination["outcome"] == "Succeeded"
    config = next(event for event in run.events if event.get("event") == "config")
    assert config["world_size"] == 2
    latest = checkpoints.latest(tmp_path / "checkpoints")
    assert latest is not None and latest.step == run.termination["progress"]["totalSteps"]
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {path.name for path in latest.path.iterdir()}
    # Only rank 0 logs events and writes: one success line, one model.
    assert sum(event.get("event") == "succeeded" for event in run.events) == 1


@pytest.mark.slow  # trains for ~20 s
def test_a_model_folder_trains_like_the_builtin(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`baseModel.path`: a Hugging Face folder on a volume, loaded with local_files_only."""
    job = prepare(tmp_path, epochs=1)
    document = json.loads(job.read_text())
    document["spec"]["baseModel"] = {"name": "tiny-llama", "path": "models/tiny", "pvc": "models"}
    document["paths"]["baseModel"] = str(tiny_model_dir)
    job.write_text(json.dumps(document))
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    assert main(["--config", str(job)]) == 0
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["baseModel"] == {"name": "tiny-llama", "source": str(tiny_model_dir)}
    adapter = json.loads((tmp_path / "model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_model_dir)
    assert not (tmp_path / "builtin-model").exists()


@pytest.mark.slow  # trains for ~15 s
def test_full_fine_tuning_saves_the_model_in_its_training_precision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp32 master weights are a training detail: a bf16 run's model is half the size on disk."""
    from safetensors import safe_open

    prepare(tmp_path, method="full", epochs=1, precision="bf16")
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    assert main(["--config", str(tmp_path / "job.json")]) == 0
    with safe_open(str(tmp_path / "model" / "model.safetensors"), "pt") as weights:
        assert {weights.get_slice(name).get_dtype() for name in weights.keys()} == {"BF16"}  # noqa: SIM118


def champion_env(folder: Path, max_regression: float = 0.0) -> str:
    return json.dumps(
        {
            "model": "support-bot",
            "alias": "champion",
            "version": "1.0.0",
            "modelVersion": "support-bot-v1.0.0",
            "claim": "earlier-workspace",
            "path": str(folder),
            "adapter": True,
            "maxRegression": max_regression,
        }
    )


@pytest.mark.slow  # shares or runs a ~25 s training subprocess
@pytest.mark.parametrize(("max_regression", "code"), [(0.0, 12), (100.0, 0)])
def test_a_model_worse_than_the_champion_fails_unless_the_regression_is_allowed(
    completed: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_regression: float, code: int
) -> None:
    # The champion trained 3 epochs at lr 0.01; this one a single epoch at a learning rate that barely moves it.
    prepare(tmp_path, epochs=1, learningRate=1e-6)
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("FINETUNE_CHAMPION", champion_env(completed.workspace / "model", max_regression))
    assert main(["--config", str(tmp_path / "job.json")]) == code
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (tmp_path / "model" / "metadata.json").is_file()  # kept for inspection either way
    if code:
        assert (message["reason"], message["failureKind"]) == ("RegressedAgainstChampion", "User")
        assert "than support-bot 1.0.0 (alias champion)" in message["message"], message
    else:
        metrics = message["metrics"]
        assert metrics["candidateEvalLoss"] > metrics["championEvalLoss"] > 0
        assert message["comparedTo"] == {
            "model": "support-bot", "alias": "champion", "version": "1.0.0", "maxRegression": 100.0
        }  # fmt: skip


def test_an_unreadable_champion_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(tmp_path)
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("FINETUNE_CHAMPION", champion_env(tmp_path / "gone"))
    assert main(["--config", str(tmp_path / "job.json")]) == 11
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["reason"] == "ChampionUnavailable" and "is not readable" in message["message"]
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
