"""training.sharding fsdp for real: 2 gloo ranks on CPU through the real entrypoint (tiny-gpt, a few steps).

What is checked is what makes it FSDP and not DDP: each rank holds half of the parameters (DTensor shards, as the
trainer's `sharded` event reports them per rank), checkpoints are per-rank shards, only rank 0 reads the base
model's weights (the others build a skeleton that rank 0's broadcast fills), and still the run learns what a single
process with the same global batch learns, resumes exactly after kill -9 and leaves an ordinary model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import modelio, sharding
from finetune_trainer.train.config import Device

from .test_config import resolved
from .test_training_runs import Run, environment, finish, prepare, wait_for_checkpoint

EPOCHS = 2
# Gradient accumulation included: FSDP reduce-scatters after every micro-batch (`sharding.arguments`).
SHARDED = {"method": "full", "sharding": "fsdp", "batchSize": 1, "gradientAccumulationSteps": 2, "epochs": EPOCHS}
# A single process with a micro-batch of 4 sees the same global batch of 4 packed rows per step.
SINGLE = {"method": "full", "batchSize": 4, "epochs": EPOCHS}
# fp32 on CPU: the two runs differ only in the order of floating-point reductions (a reduce-scatter of two halves
# against one backward over the whole batch).
LOSS_TOLERANCE = 1e-4


TWO_CPU_RANKS = Device(cuda_devices=0, bf16_supported=False, world_size=2)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_only_rank_0_reads_the_weights_the_others_build_a_skeleton(
    method: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = resolved({"method": method, "sharding": "fsdp"}, TWO_CPU_RANKS)
    assert config.sharding == "fsdp"
    # The model folder without its weights: rank 0 cannot load it, rank 1 never needs them.
    folder = tmp_path / "no-weights"
    folder.mkdir()
    for path in tiny_model_dir.iterdir():
        if path.suffix != ".safetensors":
            (folder / path.name).write_bytes(path.read_bytes())
    with pytest.raises(JobFailed) as refused:
        sharding.load_for_rank(folder, config, "sdpa", None, rank=0)
    assert refused.value.reason is Reason.INVALID_MODEL
    built = sharding.load_for_rank(folder, config, "sdpa", None, rank=1)

    loaded = modelio.load_model(tiny_model_dir, config, "sdpa")
    shapes = {name: (p.shape, p.dtype, p.requires_grad) for name, p in loaded.named_parameters()}
    assert {name: (p.shape, p.dtype, p.requires_grad) for name, p in built.named_parameters()} == shapes
    # Real, distinct storage (accelerate maps the optimizer's parameters to their shards by data_ptr): not meta.
    assert len({p.data_ptr() for p in built.parameters()}) == len(shapes) and not any(
        p.is_meta for p in built.parameters()
    )
    assert built.lm_head.weight is built.model.embed_tokens.weight  # tiny-gpt ties its embeddings, as loaded
    # Non-persistent buffers are not in the checkpoint, so nothing broadcasts them: the skeleton computes them.
    buffers = dict(loaded.named_buffers())
    assert buffers.keys() == dict(built.named_buffers()).keys() and "model.rotary_emb.inv_freq" in buffers
    for name, buffer in built.named_buffers():
        assert buffer.device.type == "cpu" and torch.equal(buffer, buffers[name]), name


def test_unsharded_ranks_each_load_the_weights(tiny_model_dir: Path) -> None:
    config = resolved({"method": "full", "sharding": "none"}, TWO_CPU_RANKS)
    loaded = sharding.load_for_rank(tiny_model_dir, config, "sdpa", None, rank=1)
    reference = modelio.load_model(tiny_model_dir, config, "sdpa")
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), reference.parameters(), strict=True))


def start(workspace: Path, processes: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "finetune_trainer.train", "--config", str(workspace / "job.json")],
        env={**environment(workspace), "FINETUNE_PROCESSES": str(processes)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_container(supervisor: int) -> None:
    """SIGKILL to the supervisor and every process under it, as when a node dies or the kubelet kills the pod.

    The ranks run in process groups of their own (torch's launcher starts them so), hence the walk over /proc.
    """
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, pending = [], [supervisor]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(parents.get(pid, []))
    for pid in reversed(tree):  # the ranks first: the supervisor would otherwise see them die and react
        os.kill(pid, signal.SIGKILL)


def train(workspace: Path, processes: int, **training: object) -> Run:
    prepare(workspace, **training)
    run = finish(workspace, start(workspace, processes))
    assert run.returncode == 0, run.events[-3:]
    return run


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return train(tmp_path_factory.mktemp("sharded"), 2, **SHARDED)


@pytest.mark.slow  # two training processes
def test_each_rank_holds_half_of_the_parameters(sharded: Run) -> None:
    report = next(event for event in sharded.events if event.get("event") == "sharded")
    total, local = report["parameters"], report["localParameters"]
    assert len(local) == 2 and sum(local) == total
    # Each tensor is split along its first dimension: at most one row of each apart (none for tiny-gpt's sizes).
    assert all(abs(count - total / 2) <= 0.01 * total for count in local), report
    assert {path.name for path in (sharded.workspace / "checkpoints").glob("checkpoint-*/pytorch_model_fsdp_0/*")} >= {
        "__0_0.distcp",
        "__1_0.distcp",
    }


@pytest.mark.slow  # two training runs
def test_losses_match_a_single_process_with_the_same_global_batch(sharded: Run, tmp_path: Path) -> None:
    single = train(tmp_path, 1, **SINGLE)
    reference, losses = single.losses(), sharded.losses()
    assert reference.keys() == losses.keys()
    # The epoch's last batch is partial, and accelerate pads a rank's short share of it with rows from the start
    # of the epoch (even_batches): from that step on the runs see different rows. Every step before it agrees.
    per_epoch = len(losses) // EPOCHS
    assert per_epoch >= 3
    for step in range(1, per_epoch):
        assert losses[step] == pytest.approx(reference[step], rel=LOSS_TOLERANCE), step


@pytest.mark.slow  # two training runs of two processes
def test_killed_sharded_run_resumes_with_identical_losses(sharded: Run, tmp_path: Path) -> None:
    prepare(tmp_path, **SHARDED)
    first = start(tmp_path, 2)
    saved = wait_for_checkpoint(tmp_path, first)
    kill_container(first.pid)  # no chance to clean up
    first.wait()
    total = sharded.termination["progress"]["totalSteps"]
    assert saved.step < total, "the run finished before it could be killed"

    resumed = finish(tmp_path, start(tmp_path, 2))
    assert resumed.returncode == 0, resumed.events[-3:]
    resume_event = next(event for event in resumed.events if event.get("event") == "resuming")
    assert resume_event["step"] >= saved.step
    after = resumed.losses()
    assert min(after) == resume_event["step"] + 1 and max(after) == total
    reference = sharded.losses()
    for step, loss in after.items():
        assert loss == pytest.approx(reference[step], rel=1e-5, abs=1e-6), step
    assert resumed.termination["metrics"]["evalLoss"] == pytest.approx(
        sharded.termination["metrics"]["evalLoss"], rel=1e-5
    )


@pytest.mark.slow  # shares the sharded run
def test_the_sharded_run_saves_an_ordinary_model_that_loads_and_generates(sharded: Run) -> None:
    folder = sharded.workspace / "model"
    assert not list(folder.glob("*fsdp*")) and (folder / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    assert sum(parameter.numel() for parameter in model.parameters()) == next(
        event["parameters"] for event in sharded.events if event.get("event") == "sharded"
    )
    prompt = tokenizer("build test deploy", return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**prompt, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert output.shape[1] > prompt["input_ids"].shape[1]
    # The final evaluation scored the gathered model: the saved weights give the same eval loss.
    assert json.loads((folder / "metadata.json").read_text())["metrics"]["evalLoss"] == pytest.approx(
        sharded.termination["metrics"]["evalLoss"], rel=1e-6
    )


@pytest.mark.slow  # two training processes
def test_sharded_lora_saves_an_adapter_that_loads_onto_the_base(tmp_path: Path) -> None:
    from peft import PeftModel

    run = train(tmp_path, 2, sharding="fsdp", batchSize=2, epochs=1)
    report = next(event for event in run.events if event.get("event") == "sharded")
    assert all(
        abs(count - report["parameters"] / 2) <= 0.01 * report["parameters"] for count in report["localParameters"]
    )
    folder = tmp_path / "model"
    assert (folder / "adapter_model.safetensors").is_file() and (folder / "merged" / "model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "builtin-model" / "tiny-gpt", local_files_only=True)
    adapted = PeftModel.from_pretrained(base, folder)
    merged = AutoModelForCausalLM.from_pretrained(folder / "merged", local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    prompt = tokenizer("build test deploy", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(adapted(**prompt).logits, merged(**prompt).logits, atol=1e-4)
