"""What the trainer image's runtime stage must provide on GPUs (the image itself is built where Docker is)."""

import re
from pathlib import Path

DOCKERFILE = Path(__file__).parents[3] / "trainer-image" / "Dockerfile"


def runtime_stage() -> str:
    return DOCKERFILE.read_text(encoding="utf-8").split("\nFROM ")[-1]


def test_triton_can_compile_its_launchers_at_runtime() -> None:
    stage = runtime_stage()
    assert re.search(r"apt-get install[^\n]*\bgcc\b", stage), "Triton needs a C compiler in the final stage"
    assert "cc -I" in stage and "/tmp/cc-check" in stage, "the build checks that the compiler finds Python.h"


def test_every_cache_points_at_the_writable_size_limited_tmp() -> None:
    settings = dict(re.findall(r"\b(HF_HOME|TRITON_CACHE_DIR|TORCHINDUCTOR_CACHE_DIR)=(\S+)", runtime_stage()))
    assert set(settings) == {"HF_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"}
    assert all(path.startswith("/tmp/") for path in settings.values()), settings
