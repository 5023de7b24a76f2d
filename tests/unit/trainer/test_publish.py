"""The copy of the trained model to the model store (finetune_trainer.publish), on real files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from finetune_operator.api.contract import Reason
from finetune_trainer import publish
from finetune_trainer.failures import JobFailed


def model_folder(root: Path, weights: bytes = b"\x00weights") -> Path:
    folder = root / "workspace" / "model"
    (folder / "merged").mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(weights)
    (folder / "merged" / "config.json").write_text("{}")
    (folder / "metadata.json").write_text(json.dumps({"model": {"format": "safetensors", "adapter": True}}))
    return folder


def test_copies_the_folder_under_model_and_version_with_its_digest(tmp_path: Path) -> None:
    source = model_folder(tmp_path)
    store = tmp_path / "store"
    relative, digest = publish.publish(source, store, "chat", "1.2.0")
    assert relative == "chat/1.2.0"
    copied = store / "chat" / "1.2.0"
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*")) == sorted(
        p.relative_to(source).as_posix() for p in source.rglob("*")
    )
    assert (copied / "adapter_model.safetensors").read_bytes() == b"\x00weights"
    assert digest == publish.tree_digest(copied)
    assert [p.name for p in (store / "chat").iterdir()] == ["1.2.0"]  # no temporary folder left


def test_digest_is_the_documented_sha256sum_listing(tmp_path: Path) -> None:
    """api.modelversion.ArtifactLocation.digest: anyone can recompute it with coreutils."""
    if shutil.which("sha256sum") is None:
        pytest.skip("coreutils sha256sum is not installed")
    source = model_folder(tmp_path)
    files = sorted((p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()), key=str.encode)
    listing = subprocess.run(["sha256sum", *files], cwd=source, capture_output=True, check=True).stdout
    total = subprocess.run(["sha256sum"], input=listing, capture_output=True, check=True).stdout.split()[0]
    assert publish.tree_digest(source) == "sha256:" + total.decode()


def test_a_retry_of_the_same_copy_succeeds_and_cleans_a_crashed_attempt(tmp_path: Path) -> None:
    source = model_folder(tmp_path)
    store = tmp_path / "store"
    first = publish.publish(source, store, "chat", "1.2.0")
    crashed = store / "chat" / f".1.2.0{publish.PARTIAL}dead"
    crashed.mkdir()
    assert publish.publish(source, store, "chat", "1.2.0") == first
    assert not crashed.exists()


def test_an_existing_version_with_other_content_is_never_overwritten(tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish.publish(model_folder(tmp_path / "a", b"first"), store, "chat", "1.2.0")
    with pytest.raises(JobFailed) as refused:
        publish.publish(model_folder(tmp_path / "b", b"second"), store, "chat", "1.2.0")
    assert refused.value.reason is Reason.MODEL_COPY_FAILED
    assert "already exists" in refused.value.message
    assert (store / "chat" / "1.2.0" / "adapter_model.safetensors").read_bytes() == b"first"


def test_an_unwritable_store_fails_with_the_reason_and_the_os_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.write_text("a file where the store's folder should be")
    with pytest.raises(JobFailed) as failed:
        publish.publish(model_folder(tmp_path), store, "chat", "1.2.0")
    assert failed.value.reason is Reason.MODEL_COPY_FAILED
    assert "chat/1.2.0" in failed.value.message


def test_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(JobFailed, match="holds no model"):
        publish.publish(tmp_path / "empty", tmp_path / "store", "chat", "1.2.0")


@pytest.mark.parametrize("relative", ["../other-job", "/etc", "", "model/../../x"])
def test_the_source_stays_inside_the_workspace(tmp_path: Path, relative: str) -> None:
    with pytest.raises(JobFailed):
        publish.source_folder(tmp_path, relative)


def test_main_writes_the_termination_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_folder(tmp_path)
    config = tmp_path / "job.json"
    config.write_text(
        json.dumps(
            {
                "job": {"name": "j", "namespace": "ml", "uid": "u"},
                "spec": {
                    "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
                    "dataset": {"source": {"configMap": {"name": "s", "key": "s.jsonl"}}},
                    "output": {"modelName": "chat", "pvc": "store"},
                },
                "paths": {"workspace": str(tmp_path / "workspace"), "sourceGlob": "x"},
            }
        )
    )
    log = tmp_path / "termination-log"
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(log))
    argv = ["--config", str(config), "--version", "0.0.1", "--store", str(tmp_path / "store")]
    assert publish.main(argv) == 0
    message = json.loads(log.read_text())
    assert message["outcome"] == "Succeeded"
    model = message["model"]
    assert (model["store"], model["path"], model["version"], model["adapter"]) == ("store", "chat/0.0.1", "0.0.1", True)
    assert model["digest"] == publish.tree_digest(tmp_path / "store" / "chat" / "0.0.1")
