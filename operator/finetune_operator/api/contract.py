"""The runtime contract between the operator and the trainer image: exit codes, reasons, failure kinds.

One table, imported by both sides: the trainer raises `JobFailed(Reason.X)` and exits with `exit_code_for`;
the operator builds the Jobs' `podFailurePolicy` from `USER_ERROR_EXIT_CODES` and, when a container exits
without a termination message, names the reason from `fallback_reason`. docs/runtime-contract.md is generated
from this module (`make crds`), so a new failure reason is an entry in `REASONS` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    SUCCEEDED = 0
    USER_DATA_ERROR = 10
    USER_CONFIG_ERROR = 11
    EVALUATION_GATE_FAILED = 12
    STORAGE_FULL = 13
    INTERNAL_ERROR = 20
    TERMINATED = 143


class FailureKind(StrEnum):
    """Who must act on a failure: the job's owner (User) or the platform (System)."""

    USER = "User"
    SYSTEM = "System"


class Reason(StrEnum):
    """The `reason` values a trainer-image container reports in its termination message."""

    CURATION_FAILED = "CurationFailed"
    NO_SAMPLES_AFTER_CURATION = "NoSamplesAfterCuration"
    SOURCE_NOT_FOUND = "SourceNotFound"
    SOURCE_ACCESS_DENIED = "SourceAccessDenied"
    SOURCE_CORRUPT = "SourceCorrupt"
    OUTPUT_ACCESS_DENIED = "OutputAccessDenied"
    INVALID_MODEL = "InvalidModel"
    INVALID_CONFIGURATION = "InvalidConfiguration"
    CHECKPOINT_MISMATCH = "CheckpointMismatch"
    CHAT_TEMPLATE_MISSING = "ChatTemplateMissing"
    EVALUATION_GATE_FAILED = "EvaluationGateFailed"
    REGRESSED_AGAINST_CHAMPION = "RegressedAgainstChampion"
    CHAMPION_UNAVAILABLE = "ChampionUnavailable"
    OUT_OF_MEMORY = "OutOfMemory"
    INSUFFICIENT_GPU_MEMORY = "InsufficientGPUMemory"
    GPUS_NOT_VISIBLE = "GPUsNotVisible"
    RANKS_LOST_CONTACT = "RanksLostContact"
    RENDEZVOUS_TIMEOUT = "RendezvousTimeout"
    STORAGE_FULL = "StorageFull"
    MODEL_COPY_FAILED = "ModelCopyFailed"
    INTERNAL_ERROR = "InternalError"


@dataclass(frozen=True)
class ExitCodeRule:
    meaning: str
    fail_job: bool
    """True: the Job's podFailurePolicy fails it at once (no retry can help); False: counts against backoffLimit."""
    fallback: Reason | None = None
    """The reason the operator reports for this exit code when the container wrote no termination message."""


EXIT_CODES: Mapping[ExitCode, ExitCodeRule] = {
    ExitCode.SUCCEEDED: ExitCodeRule("success", fail_job=False),
    ExitCode.USER_DATA_ERROR: ExitCodeRule(
        "user data error (no source files, zero samples, too many malformed lines)", True, Reason.CURATION_FAILED
    ),
    ExitCode.USER_CONFIG_ERROR: ExitCodeRule(
        "user config error (invalid model, checkpoint of a different training config, job too big for the GPUs)",
        True,
        Reason.INVALID_CONFIGURATION,
    ),
    ExitCode.EVALUATION_GATE_FAILED: ExitCodeRule(
        "an evaluation gate failed (evaluation.maxEvalLoss, minToolCallAccuracy or compareTo)",
        True,
        Reason.EVALUATION_GATE_FAILED,
    ),
    # A retry would resume from the last checkpoint and fill the volume again at the next one.
    ExitCode.STORAGE_FULL: ExitCodeRule("workspace volume full (ENOSPC/EDQUOT)", True, Reason.STORAGE_FULL),
    ExitCode.INTERNAL_ERROR: ExitCodeRule("internal error", fail_job=False),
    ExitCode.TERMINATED: ExitCodeRule(
        "stopped on SIGTERM after saving a checkpoint; no termination message; a disruption is not counted",
        fail_job=False,
    ),
}

USER_ERROR_EXIT_CODES: tuple[int, ...] = tuple(int(code) for code, rule in EXIT_CODES.items() if rule.fail_job)


@dataclass(frozen=True)
class ReasonRule:
    exit_code: ExitCode
    meaning: str
    advice: str
    """What the user (User) or the platform team (System) does about it."""

    @property
    def failure_kind(self) -> FailureKind:
        return FailureKind.USER if EXIT_CODES[self.exit_code].fail_job else FailureKind.SYSTEM


REASONS: Mapping[Reason, ReasonRule] = {
    Reason.CURATION_FAILED: ReasonRule(
        ExitCode.USER_DATA_ERROR,
        "the session data could not be curated (unreadable, too many malformed lines, no dataset)",
        "fix the session files named in the message; the dataset manifest lists rejected lines",
    ),
    Reason.NO_SAMPLES_AFTER_CURATION: ReasonRule(
        ExitCode.USER_DATA_ERROR,
        "curation kept no samples",
        "see status.dataset.rejected; lower dataset.curation.minSuccessRate or add sessions",
    ),
    Reason.SOURCE_NOT_FOUND: ReasonRule(
        ExitCode.USER_DATA_ERROR,
        "no file matches dataset.source",
        "fix spec.dataset.source in a new job, or put the session files on the claim",
    ),
    # Credentials and policies are configuration; a damaged stored object is data.
    Reason.SOURCE_ACCESS_DENIED: ReasonRule(
        ExitCode.USER_CONFIG_ERROR,
        "the object store refused the credentials or the policy denies reading the source (the message names the URI)",
        "fix the Secret named by s3.secretRef (or the pod's workload identity) and its policy: docs/object-storage.md",
    ),
    Reason.SOURCE_CORRUPT: ReasonRule(
        ExitCode.USER_DATA_ERROR,
        "an object read from the bucket does not match its listed size or ETag (the message names it)",
        "upload the object again; the message gives the size and ETag the store lists",
    ),
    Reason.OUTPUT_ACCESS_DENIED: ReasonRule(
        ExitCode.USER_CONFIG_ERROR,
        "the object store refused writing the model copy to output.s3 (the model stays in the workspace)",
        "allow s3:PutObject under output.s3.uri for the Secret's identity: docs/object-storage.md",
    ),
    Reason.INVALID_MODEL: ReasonRule(
        ExitCode.USER_CONFIG_ERROR,
        "the base model cannot be loaded (missing folder, config or weights)",
        "fix spec.baseModel in a new job; the folder must be a Hugging Face model",
    ),
    Reason.INVALID_CONFIGURATION: ReasonRule(
        ExitCode.USER_CONFIG_ERROR,
        "exit 11 without a termination message (the operator's fallback for that code)",
        "read the training pod's log; fix spec.baseModel or spec.training in a new job",
    ),
    Reason.CHECKPOINT_MISMATCH: ReasonRule(
        ExitCode.USER_CONFIG_ERROR,
        "the workspace holds checkpoints of a different training config",
        "use a new job name (a new workspace), or delete the workspace's checkpoints",
    ),
    Reason.CHAT_TEMPLATE_MISSING: ReasonRule(
        ExitCode.USER_CONFIG_ERROR,
        "the dataset is in chat format (conversations with tool calls) but the base model's tokenizer has no chat "
        "template to render them with",
        "use a chat (instruct) base model, add a chat template to this one, or set "
        "spec.dataset.curation.format: instruction",
    ),
    Reason.EVALUATION_GATE_FAILED: ReasonRule(
        ExitCode.EVALUATION_GATE_FAILED,
        "evalLoss is above evaluation.maxEvalLoss, or the held-out tool-call accuracy is below "
        "evaluation.minToolCallAccuracy (the message names the gate and the figures)",
        "the model is kept in the workspace; train longer or on more data, or relax the gate",
    ),
    Reason.REGRESSED_AGAINST_CHAMPION: ReasonRule(
        ExitCode.EVALUATION_GATE_FAILED,
        "on this job's held-out split the new model's loss is worse than the evaluation.compareTo alias's version's "
        "by more than maxRegression (status.metrics: candidateEvalLoss, championEvalLoss)",
        "the model is kept in the workspace; train longer or on more data, or raise compareTo.maxRegression",
    ),
    Reason.CHAMPION_UNAVAILABLE: ReasonRule(
        ExitCode.USER_CONFIG_ERROR,
        "the evaluation.compareTo alias names a version that is not registered, is archived, or whose model cannot "
        "be read or compared (another base model, another tokenizer)",
        "kubectl get registeredmodel <model> -o yaml shows the aliases; fix the alias or its artifact, or remove "
        "evaluation.compareTo",
    ),
    # GPU memory depends on the node as well as the spec, so a retry (from the last checkpoint) may succeed.
    Reason.OUT_OF_MEMORY: ReasonRule(
        ExitCode.INTERNAL_ERROR,
        "the GPU ran out of memory",
        "lower training.batchSize or training.maxSeqLength, or use method lora",
    ),
    # Refused before loading weights: the memory plan (api.memoryplan) says the job cannot fit these GPUs. The spec
    # is immutable and gpuResourceName pins the GPU type, so a retry would be refused the same way.
    Reason.INSUFFICIENT_GPU_MEMORY: ReasonRule(
        ExitCode.USER_CONFIG_ERROR,
        "the memory plan estimates more memory per GPU than the GPU has (refused before loading the weights)",
        "apply the change the message names (it gives the estimate, the GPU's memory and the cheapest setting that "
        "fits) in a new job; docs/trainer.md has a sizing table",
    ),
    # A node problem (driver older than the image's CUDA, device plugin, runtime): another node may work.
    Reason.GPUS_NOT_VISIBLE: ReasonRule(
        ExitCode.INTERNAL_ERROR,
        "the training pod sees fewer GPUs than spec.resources.gpus (instead of silently training on the CPU)",
        "the message names the node's NVIDIA driver and the image's CUDA: upgrade the driver (CUDA 13.0 needs >= 580) "
        "or keep the job off that node (spec.resources.nodeSelector)",
    ),
    # Transient as often as not (a peer's failure, a link fault): retried from the last checkpoint.
    Reason.RANKS_LOST_CONTACT: ReasonRule(
        ExitCode.INTERNAL_ERROR,
        "the training ranks lost contact: a collective (NCCL on GPUs) failed or timed out, or a rank died from a "
        "signal (NCCL's watchdog aborts a rank whose collective timed out) without reporting an error",
        "retried from the last checkpoint; the message names the rank; if it persists, look for another rank's "
        "error in the pod's log and for Xid errors in the node's kernel log, and set NCCL_DEBUG=WARN in spec.env",
    ),
    # A node rank's pod that was not scheduled in time may be on the next attempt (capacity freed): retried.
    Reason.RENDEZVOUS_TIMEOUT: ReasonRule(
        ExitCode.INTERNAL_ERROR,
        "the pods of a multi-node job did not all meet within the operator's rendezvous timeout (a pod not scheduled, "
        "pod 0's hostname not resolvable or not reachable); the message names the missing node ranks",
        "kubectl describe the missing pods (unschedulable: free capacity, or use spec.queueName so Kueue admits the "
        "group as a whole); a DNS or network policy that blocks the headless Service's port 29500 is the platform's",
    ),
    Reason.STORAGE_FULL: ReasonRule(
        ExitCode.STORAGE_FULL,
        "the workspace volume is full",
        "raise spec.storage.size in a new job, or free space on the workspace PVC",
    ),
    # Retried by the copy Job (a store that was briefly unavailable); the model stays in the workspace either way.
    Reason.MODEL_COPY_FAILED: ReasonRule(
        ExitCode.INTERNAL_ERROR,
        "the model could not be copied to the model store (output.pvc or output.s3)",
        "the message names the cause; the model is kept in the workspace (the TTL does not delete the job); copy "
        "model/ from the workspace PVC yourself, or fix the store and re-run the job",
    ),
    Reason.INTERNAL_ERROR: ReasonRule(
        ExitCode.INTERNAL_ERROR,
        "an unexpected error in the trainer image",
        "retried up to runPolicy.backoffLimit; report it with the pod's log if it persists",
    ),
}


def exit_code_for(reason: Reason) -> ExitCode:
    return REASONS[reason].exit_code


def failure_kind_for(reason: Reason) -> FailureKind:
    return REASONS[reason].failure_kind


def fallback_reason(exit_code: int | None) -> Reason | None:
    """The reason for a container that exited with `exit_code` and wrote no termination message."""
    try:
        return EXIT_CODES[ExitCode(exit_code)].fallback if exit_code is not None else None
    except ValueError:
        return None
