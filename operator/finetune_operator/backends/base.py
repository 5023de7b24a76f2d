"""The training-backend seam: the one interface the reconciler uses for a job's training step.

The agent platform's design called it `TrainingProviderPort` (start / status / cancel). A backend is pure: it
builds the objects to create, reads the observed objects into the lifecycle's `WorkloadState`, names what to
delete to stop, and describes the artifact training produced. The reconciler does every API call.

What a backend must guarantee:
- Idempotent creation by deterministic names: `children` returns the same names for the same job every time,
  so creating them again after a crash is a harmless 409, and no training runs twice.
- No duplicate work after an operator restart: everything `observe` needs is in the cluster (the children, their
  pods and termination messages), never in operator memory.
- Attempt accounting: `WorkloadState.attempt_ids` names every attempt that exists now (one id per attempt,
  e.g. a pod name for a single-pod Job, or a group id for a multi-pod group); the operator records the ids in
  `status.trainingPods` and counts `status.attempts` from the ids it has not seen before, so an attempt whose
  pods were evicted and deleted still counts once. `WorkloadState.attempts` is the backend's own count
  (e.g. the Job controller's), the lower bound.
- Evictions and preemptions requeue without consuming a retry (`runPolicy.backoffLimit` counts only failures
  the job caused); user errors (the contract's `USER_ERROR_EXIT_CODES`) fail at once without a retry.
- Its children carry `naming.labels(job, uid, component)` with `component == backend.component`: the operator
  watches batch Jobs, Pods and PersistentVolumeClaims by those labels and hands them to `observe`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from finetune_operator.api.modelversion import ArtifactLocation
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.children import JobRef
from finetune_operator.config import Settings
from finetune_operator.observation import WorkloadState

Obj = dict[str, Any]
Observed = Mapping[str, Any]


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    name: str


class TrainingBackend(Protocol):
    component: str
    """The `finetune.dev/component` label value of this backend's children."""

    def children(self, job: JobRef, settings: Settings) -> list[Obj]:
        """Every object the training step needs, in creation order, with deterministic names."""
        ...

    def observe(self, workload: Observed | None, pods: Sequence[Observed]) -> WorkloadState:
        """The training step's state from its (watched) workload object and pods."""
        ...

    def stop(self, workload: Observed | None) -> list[ObjectRef]:
        """What to delete to stop training now (the workspace and its checkpoints are never among them)."""
        ...

    def artifact(self, job_name: str, result: TerminationMessage) -> ArtifactLocation:
        """Where the model of a succeeded training step is."""
        ...
