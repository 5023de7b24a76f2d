"""Are the GPUs the pod was given visible to torch? If not, fail at once instead of training on the CPU.

A node whose NVIDIA driver is older than what the image's CUDA needs gives torch 0 devices: without this
check a GPU job became a silent fp32 CPU run (hours for minutes of work). The operator passes the GPU
count it requested (`EXPECTED_ENV`); fewer visible devices end the pod with `GPUsNotVisible` (System:
another node may be fine) and a message with what is needed to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

EXPECTED_ENV = "FINETUNE_EXPECTED_GPUS"
DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")
# The oldest driver each CUDA major release runs on (NVIDIA's CUDA compatibility table).
MINIMUM_DRIVER = {"13": "580", "12": "525"}


def expected(environ: Mapping[str, str]) -> int:
    return int(environ.get(EXPECTED_ENV) or 0)


def driver_version(version_file: Path = DRIVER_VERSION_FILE) -> str:
    """The kernel module's version line, as `nvidia-smi` would report it; why not, if it cannot be read."""
    try:
        first = version_file.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return f"unknown ({version_file} is absent: no NVIDIA driver is mounted into the container)"
    words = first.split()
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 ..."
    return next((word for word in words if word[:1].isdigit() and "." in word), first.strip())


def not_visible_message(expected_gpus: int, visible: int, cuda: str | None, driver: str, devices: str | None) -> str:
    """Why training stops, with the versions that decide it (pure: the caller asks torch and the system)."""
    needed = MINIMUM_DRIVER.get((cuda or "").split(".")[0])
    requirement = f"CUDA {cuda} needs NVIDIA driver >= {needed}" if needed else f"CUDA {cuda}"
    return (
        f"spec.resources.gpus is {expected_gpus} but torch sees {visible} GPU(s); the node's driver: {driver}; "
        f"this image's torch is built for {requirement}; NVIDIA_VISIBLE_DEVICES={devices or 'unset'}. "
        "Upgrade the node's driver or schedule the job elsewhere (spec.resources.nodeSelector); "
        "training on the CPU instead would be orders of magnitude slower"
    )
