"""Training backends: how a FineTuningJob's training step runs (see `base` for the contract)."""

from finetune_operator.api import FineTuningJobSpec
from finetune_operator.backends.base import ObjectRef, TrainingBackend
from finetune_operator.backends.batchjob import BatchJobBackend
from finetune_operator.backends.podgroup import PodGroupBackend

__all__ = ["BatchJobBackend", "ObjectRef", "PodGroupBackend", "TrainingBackend", "backend_for"]

_BATCH_JOB = BatchJobBackend()
_POD_GROUP = PodGroupBackend()


def backend_for(spec: FineTuningJobSpec) -> TrainingBackend:
    """The backend that trains this spec: one pod of a batch Job, or a group of pods (resources.nodes > 1)."""
    return _POD_GROUP if spec.resources.nodes > 1 else _BATCH_JOB
