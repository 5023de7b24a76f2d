"""Weights & Biases as a `tracker.Backend`, through the `wandb` SDK (the project's `wandb` extra).

`wandb` is imported only when a job asks for W&B: the import alone takes ~1.5 s and starts nothing, but it is not
a cost every training pod should pay. The run id is the job's uid and the run is opened with `resume="allow"`,
so a restarted pod continues the job's run online; offline, each pod writes its own `offline-run-*-<uid>`
folder and `wandb sync` uploads them all into that one run. Everything the SDK writes goes under the workspace
(`wandb/`): the run files and its own settings, cache and artifact staging, since the trainer's root file system
is read-only and an offline run's staged artifacts must outlive the pod for `wandb sync`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_operator.api.tracking import WandbTracking

if TYPE_CHECKING:
    from wandb.sdk.wandb_run import Run

# The SDK's default is 90 s; the run is started once per pod (a failed start is not retried, see `start`), so this
# is the most an unreachable W&B server costs a training pod.
INIT_TIMEOUT_SECONDS = 60.0
# W&B refuses longer tags.
MAX_TAG_LENGTH = 64
_SDK_DIRS = {"WANDB_CONFIG_DIR": "config", "WANDB_CACHE_DIR": "cache", "WANDB_DATA_DIR": "data"}


class WandbBackend:
    name = "wandb"

    def __init__(self, spec: WandbTracking, run_id: str, run_name: str, job: str, workspace: Path) -> None:
        self.spec = spec
        self.run_id = run_id
        self.run_name = run_name
        self.job = job
        self.workspace = workspace
        self.run: Run | None = None
        self.start_error: str | None = None
        self.where: dict[str, str] = {}

    def start(self, hyperparameters: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        # wandb.init waits up to INIT_TIMEOUT_SECONDS for a server that does not answer: one try per pod, not one
        # per tracker retry interval, so a W&B outage cannot slow training down more than once.
        if self.start_error is not None:
            raise RuntimeError(f"the run was not started: {self.start_error}")
        try:
            self.run = self._init(hyperparameters, tags)
        except Exception as error:
            self.start_error = str(error) or type(error).__name__
            raise
        # Read now: a finished run refuses most calls.
        self.where = {"runId": self.run.id, "path": self.run.path, "directory": self._directory(self.run)}
        if self.run.url:  # none offline
            self.where["url"] = self.run.url

    def _init(self, hyperparameters: Mapping[str, Any], tags: Mapping[str, str]) -> Run:
        import wandb  # lazily: only jobs with spec.tracking.wandb pay for the import

        root = self.workspace / "wandb"
        for variable, folder in _SDK_DIRS.items():
            os.environ.setdefault(variable, str(root / "sdk" / folder))  # spec.env may point them elsewhere
        root.mkdir(parents=True, exist_ok=True)
        short = {key.rsplit("/", 1)[-1]: value for key, value in tags.items()}  # finetune.dev/job -> job
        settings = wandb.Settings(
            mode=self.spec.mode,
            init_timeout=INIT_TIMEOUT_SECONDS,
            # The trainer's stdout is its JSON-lines log: the SDK must neither print there nor capture it.
            silent=True,
            console="off",
            disable_git=True,
            save_code=False,
            **({"base_url": self.spec.host} if self.spec.host else {}),
        )
        return wandb.init(
            project=self.spec.project,
            entity=self.spec.entity,
            id=self.run_id,
            name=self.run_name,
            resume="allow",
            dir=str(self.workspace),
            config={**hyperparameters, "finetune": short},
            tags=[tag for tag in (f"{key}:{value}" for key, value in short.items()) if len(tag) <= MAX_TAG_LENGTH],
            settings=settings,
        )

    def _run(self) -> Run:
        if self.run is None:
            raise RuntimeError("the W&B run was not started")
        return self.run

    def log_metrics(self, points: list[tuple[int, dict[str, float]]]) -> None:
        run = self._run()
        for step, values in points:
            run.log(values, step=step)

    def log_artifact(self, local: Path, name: str) -> None:
        import wandb

        folder, _, file_name = name.rpartition("/")
        artifact = wandb.Artifact(f"{self.job}-{folder or 'files'}", type=folder or "files")
        artifact.add_file(str(local), name=file_name)
        self._run().log_artifact(artifact)

    def finish(self, succeeded: bool) -> None:
        import wandb

        self._run().finish(exit_code=0 if succeeded else 1)
        # run.finish returns before the SDK's service has written the last records of an offline run; teardown
        # waits for it (and for uploads online), so the files are complete once the job reports its end.
        wandb.teardown()

    def reference(self) -> dict[str, str]:
        return dict(self.where)

    def _directory(self, run: Run) -> str:
        """The run's folder (`wandb/offline-run-...` or `wandb/run-...`), relative to the workspace."""
        run_folder = Path(run.dir).parent  # run.dir is the run folder's `files/`
        try:
            return str(run_folder.relative_to(self.workspace))
        except ValueError:
            return str(run_folder)
