"""A workspace PVC that fills up mid-training, on the real control plane: Failed/StorageFull, checkpoint intact.

The job's workspace claim is bound to a PersistentVolume made for this test: a hostPath on a small tmpfs
mounted on the host, which the node agent bind-mounts into the curation and training pods like any
hostPath PV. Curation and the first epoch's checkpoint fit. Once that checkpoint is sealed, the tmpfs is
shrunk (remounted, content kept) to what it holds plus less than one checkpoint, so the next epoch's
checkpoint genuinely fails with ENOSPC inside the training pod. The operator must turn that into
`Failed` with reason StorageFull, the trainer's message and failureKind User, without a retry
(podFailurePolicy FailJob on exit 13), and the PVC must still hold the sealed checkpoint and no partial one.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_harness import OperatorProcess, get_job, wait_phase
from test_operator_e2e import quickstart, setup

from finetune_trainer.train import checkpoints
from support.fixtures import Kubectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STORAGE_CLASS = "fto-small-volume"
KiB, MiB = 1024, 1024 * 1024
# A checkpoint of the quickstart's full fine-tuning (weights + AdamW state) takes ~1.8 MiB.
MARGIN = 512 * KiB


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs on the host (where the node agent reads hostPath volumes); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting the PV's tmpfs needs root")
    folder = tmp_path / "pv"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={64 * MiB},mode=0777", "fto-small-pv", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def bound_volume(kubectl: Kubectl, namespace: str, claim: str, folder: Path) -> str:
    """A PV on `folder`, reserved for `namespace/claim` (the operator's workspace claim binds to it)."""
    name = f"{namespace}-workspace"
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(folder), "type": "Directory"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(volume))
    return name


def shrink_to_what_is_used_plus(folder: Path, margin: int) -> None:
    """Remount the tmpfs at its current usage + margin; retried, since the trainer may write meanwhile."""
    for _ in range(50):
        stat = os.statvfs(folder)
        used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
        resized = subprocess.run(["mount", "-o", f"remount,size={used + margin}", str(folder)], capture_output=True)
        if resized.returncode == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"cannot shrink the tmpfs: {resized.stderr.decode().strip()}")


def test_full_workspace_pvc_fails_the_job_with_storage_full_and_keeps_the_checkpoint(
    kubectl: Kubectl,
    namespace: str,
    small_volume: Path,
    operator_process: OperatorProcess,
) -> None:
    body = quickstart("full", epochs=6)  # a checkpoint at every epoch's end
    body["spec"]["storage"]["storageClassName"] = STORAGE_CLASS
    body["spec"]["runPolicy"]["backoffLimit"] = 2  # a retry would be allowed: the failure must not use it
    pv = bound_volume(kubectl, namespace, "full-workspace", small_volume)
    try:
        setup(kubectl, namespace, body)
        deadline = time.monotonic() + 600
        while checkpoints.latest(small_volume / "checkpoints") is None:
            status = get_job(kubectl, namespace, "full").get("status") or {}
            assert status.get("phase") not in ("Completed", "Failed"), status
            assert operator_process.alive(), operator_process.tail()
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        shrink_to_what_is_used_plus(small_volume, MARGIN)
        first = checkpoints.latest(small_volume / "checkpoints")
        assert first is not None

        job = wait_phase(kubectl, namespace, "full", ("Failed", "Completed"), timeout=600, operator=operator_process)
        status = job["status"]
        assert (status["phase"], status["reason"], status["failureKind"]) == ("Failed", "StorageFull", "User"), status
        message = status["message"]
        assert message.startswith("the workspace volume is full (No space left on device) while writing checkpoint-")
        assert "is intact" in message and "fix: raise spec.storage.size in a new job" in message
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert (failed["status"], failed["reason"]) == ("True", "StorageFull")

        # FailJob on exit 13: one training pod, no retry spent on a volume that would fill again.
        pods = kubectl(
            "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=training", "-o", "name"
        ).split()  # fmt: skip
        assert len(pods) == 1, pods
        train = json.loads(kubectl("-n", namespace, "get", "job", "full-train", "-o", "json"))
        assert [c["reason"] for c in train["status"]["conditions"] if c["type"] == "Failed"] == ["PodFailurePolicy"]

        # On the PVC: the sealed checkpoint(s), complete; no partial one holding the space.
        folder = small_volume / "checkpoints"
        assert not (folder / checkpoints.STAGING).exists()
        sealed = sorted(path.name for path in folder.iterdir())
        assert sealed and all(checkpoints.read_complete(folder / name) for name in sealed), sealed
        latest = checkpoints.latest(folder)
        assert latest is not None and latest.step >= first.step
        assert f"the last complete checkpoint, {latest.path.name}, is intact" in message
        assert not (small_volume / "model").exists()
    finally:
        kubectl("-n", namespace, "delete", "ftj", "full", "--wait=false", check=False)
        kubectl("delete", "pv", pv, "--wait=false", check=False)
