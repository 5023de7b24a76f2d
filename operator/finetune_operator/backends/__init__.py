"""Training backends: how a FineTuningJob's training step runs (see `base` for the contract)."""

from finetune_operator.api import FineTuningJobSpec
from finetune_operator.backends.base import ObjectRef, TrainingBackend
from finetune_operator.backends.batchjob import BatchJobBackend

__all__ = ["BatchJobBackend", "ObjectRef", "TrainingBackend", "backend_for"]

_BATCH_JOB = BatchJobBackend()


def backend_for(spec: FineTuningJobSpec) -> TrainingBackend:
    """The backend that trains this spec; today every spec trains as one pod of a batch Job."""
    del spec  # multi-node and hosted backends will choose by spec.resources / spec.training
    return _BATCH_JOB
