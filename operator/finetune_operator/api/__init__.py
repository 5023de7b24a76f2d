"""The finetune.dev/v1alpha1 API as pydantic models, and the operator-trainer runtime contract.

Pure: imports neither kopf nor kubernetes; the trainer image imports this package and nothing else of the
operator.
"""

from finetune_operator.api.base import API_VERSION, GROUP, VERSION, ApiModel
from finetune_operator.api.contract import ExitCode, FailureKind, Reason
from finetune_operator.api.finetuningjob import FineTuningJob
from finetune_operator.api.jobconfig import JobConfig
from finetune_operator.api.modelversion import ModelVersion, ModelVersionSpec
from finetune_operator.api.output import Bump, OutputSpec
from finetune_operator.api.placement import ResourcesSpec
from finetune_operator.api.registeredmodel import RegisteredModelSpec, RegisteredModelStatus
from finetune_operator.api.spec import (
    AccessMode,
    BaseModelSpec,
    CurationFormat,
    CurationSpec,
    DatasetSource,
    DatasetSpec,
    FineTuningJobSpec,
    RetainPolicy,
    RunPolicy,
    StorageSpec,
)
from finetune_operator.api.status import (
    Condition,
    DatasetStatus,
    FineTuningJobStatus,
    Metrics,
    Phase,
    Progress,
    RejectedCounts,
)
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.api.training import LoraSpec, Precision, Quantization, Sharding, TrainingMethod, TrainingSpec

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "AccessMode",
    "ApiModel",
    "BaseModelSpec",
    "Bump",
    "Condition",
    "CurationFormat",
    "CurationSpec",
    "DatasetSource",
    "DatasetSpec",
    "DatasetStatus",
    "ExitCode",
    "FailureKind",
    "FineTuningJob",
    "FineTuningJobSpec",
    "FineTuningJobStatus",
    "JobConfig",
    "LoraSpec",
    "Metrics",
    "ModelVersion",
    "ModelVersionSpec",
    "OutputSpec",
    "Phase",
    "Precision",
    "Progress",
    "Quantization",
    "Reason",
    "RegisteredModelSpec",
    "RegisteredModelStatus",
    "RejectedCounts",
    "ResourcesSpec",
    "RetainPolicy",
    "RunPolicy",
    "Sharding",
    "StorageSpec",
    "TerminationMessage",
    "TrainingMethod",
    "TrainingSpec",
]
