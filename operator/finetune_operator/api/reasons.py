"""Every `status.reason` a FineTuningJob can show: its phase, who must act, and what to do.

The operator's own reasons are listed here; the trainer image's come from the contract (`api.contract.REASONS`)
and reach the status unchanged. docs/reasons.md is generated from `catalogue()`, and a unit test fails when
the lifecycle uses a reason this table does not list, so the documentation cannot fall behind the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from finetune_operator.api.contract import REASONS, FailureKind
from finetune_operator.api.status import Phase

_DESCRIBE = "kubectl describe ftj <job>"
_PODS = "kubectl get pods -l finetune.dev/job=<job>"
_TRAIN_LOG = "kubectl logs job/<job>-train"
_CURATE_LOG = "kubectl logs job/<job>-curate"


@dataclass(frozen=True)
class StatusReason:
    reason: str
    phases: tuple[Phase, ...]
    failure_kind: FailureKind | None
    meaning: str
    action: str
    """What to do next (a command to run, a field to change); `<job>` is the FineTuningJob's name."""


OPERATOR_REASONS: tuple[StatusReason, ...] = (
    StatusReason(
        "Creating",
        (Phase.PENDING,),
        None,
        "creating the workspace PVC, the job config and the trainer identity",
        f"nothing; if it stays, `{_DESCRIBE}` shows the API server's refusal in the Events",
    ),
    StatusReason(
        "SourceNotFound",
        (Phase.PENDING, Phase.FAILED),
        FailureKind.USER,
        "the dataset source (PVC or ConfigMap key) does not exist; the job waits for it, then fails",
        "create the claim or ConfigMap key named in the message, or fix spec.dataset.source in a new job",
    ),
    StatusReason(
        "CurationStarting",
        (Phase.PENDING,),
        None,
        "the curation pod is starting (volume binding, scheduling, image pull)",
        f"`{_PODS}` and `kubectl describe pod` on the curation pod if it does not start",
    ),
    StatusReason(
        "Curating",
        (Phase.RUNNING,),
        None,
        "curation is turning sessions into the dataset",
        f"`{_CURATE_LOG}` to follow it",
    ),
    StatusReason(
        "TrainingStarting",
        (Phase.RUNNING,),
        None,
        "the training workload is being created or its pod is starting",
        f"`{_PODS}`; `kubectl describe pod` shows image pulls and volume attachment",
    ),
    StatusReason(
        "Training",
        (Phase.RUNNING,),
        None,
        "the trainer is training; status.progress and status.metrics are live",
        f"`{_TRAIN_LOG}` to follow it",
    ),
    StatusReason(
        "Evaluating",
        (Phase.EVALUATING,),
        None,
        "training is done; evaluation on the held-out split is running",
        f"`{_TRAIN_LOG}`",
    ),
    StatusReason(
        "Registering",
        (Phase.EVALUATING,),
        None,
        "evaluation passed; the ModelVersion is being created",
        "nothing; the next reconciliation completes the job",
    ),
    StatusReason(
        "Publishing",
        (Phase.EVALUATING,),
        None,
        "evaluation passed; the copy Job is copying the model to the model store (spec.output.pvc or .s3)",
        "`kubectl logs job/<job>-publish`; the message carries the scheduler's reason if its pod waits",
    ),
    StatusReason(
        "ModelStoreNotFound",
        (Phase.EVALUATING,),
        None,
        "the model store PVC (spec.output.pvc) does not exist; the job waits for it, the model is in the workspace",
        "create the claim named in the message (in the job's namespace)",
    ),
    StatusReason(
        "WorkspaceNotProvisioned",
        (Phase.PENDING,),
        None,
        "the workspace claim has no volume and its provisioner said why (e.g. an unknown storage.storageClassName); "
        "the job waits: the claim binds once the cause is fixed",
        "fix what the message names (create the StorageClass, free the backend), or re-create the job with another "
        "storage.storageClassName",
    ),
    StatusReason(
        "QuotaExceeded",
        (Phase.PENDING, Phase.QUEUED, Phase.RUNNING, Phase.EVALUATING),
        None,
        "a ResourceQuota of the namespace refused one of the job's objects (or some pods of a multi-node group); the "
        "job retries every sweep",
        "free quota or raise it (`kubectl describe resourcequota`); the message names the quota and the object",
    ),
    StatusReason(
        "CreateRefused",
        (Phase.FAILED,),
        FailureKind.USER,
        "the API server refused one of the job's objects (invalid, or denied by RBAC, an admission policy or "
        "a webhook); its message is the status message. System when the operator lacks the permission",
        "fix what the message names (often a cluster policy on pods or Jobs) in a new job; for System, the "
        "operator's RBAC (docs/install.md)",
    ),
    StatusReason(
        "NameCollision",
        (Phase.PENDING, Phase.FAILED),
        FailureKind.USER,
        "an object with the name of one of the job's children exists and is not the job's: the retained "
        "workspace of a deleted job with the same name, or someone else's object. The job never uses it; it "
        "waits only while a deleted namesake's children are being garbage-collected",
        "delete the object named in the message and re-create the job, or give the job another name",
    ),
    StatusReason(
        "ConcurrencyLimit",
        (Phase.QUEUED,),
        None,
        "the namespace already runs the operator's maximum of training workloads (FTO_MAX_ACTIVE_PER_NAMESPACE)",
        "wait, or ask the platform team to raise the limit",
    ),
    StatusReason(
        "WaitingForAdmission",
        (Phase.QUEUED,),
        None,
        "Kueue has not admitted the training workload yet",
        "`kubectl get workloads` in the namespace; the message carries Kueue's reason",
    ),
    StatusReason(
        "NoKueueWorkload",
        (Phase.QUEUED,),
        None,
        "spec.queueName is set but Kueue created no Workload for the suspended training Job within "
        "FTO_KUEUE_WORKLOAD_WAIT_SECONDS (60 s by default; Kueue creates one within seconds): Kueue is not "
        "installed, not running, or not managing batch Jobs in the namespace. The job keeps waiting",
        "install or start Kueue (`kubectl get crd workloads.kueue.x-k8s.io`, its controller's pods and logs); once "
        "it runs it creates the Workload and the job continues. Or re-create the job without spec.queueName",
    ),
    StatusReason(
        "WaitingForCapacity",
        (Phase.QUEUED,),
        None,
        "the training pod cannot be scheduled: no node has the GPUs free (a multi-node job: some of its pods, each "
        "named with its node rank, while the others may already run)",
        f"the message carries the scheduler's reason; `{_PODS}` and `kubectl describe pod`",
    ),
    StatusReason(
        "RestartingGroup",
        (Phase.RUNNING,),
        None,
        "a pod of a multi-node job failed or was evicted: the whole group stops and restarts from the latest "
        "checkpoint (a failure uses one of runPolicy.backoffLimit's retries, an eviction none)",
        "nothing; the message names the failure; status.retriedAttempts lists the group attempts that used a retry",
    ),
    StatusReason(
        "ModelRegistered",
        (Phase.COMPLETED,),
        None,
        "evaluation passed and the ModelVersion was created",
        "`kubectl get modelversions -l finetune.dev/job=<job>`",
    ),
    StatusReason(
        "Cancelled",
        (Phase.CANCELLED,),
        None,
        "spec.cancel is true: pods stopped; the workspace and its checkpoints are kept",
        "nothing; create a new job to train again (it can resume on a retained workspace)",
    ),
    StatusReason(
        "VersionExists",
        (Phase.FAILED,),
        FailureKind.USER,
        "spec.output.version is already registered by another job",
        "set spec.output.version to a new version, or leave it blank to take the next one, in a new job",
    ),
    StatusReason(
        "StorageLost",
        (Phase.FAILED,),
        FailureKind.SYSTEM,
        "the workspace PVC lost its volume",
        "`kubectl describe pvc <job>-workspace`; the platform team restores the volume or you re-run the job",
    ),
    StatusReason(
        "NoSamplesAfterCuration",
        (Phase.FAILED,),
        FailureKind.USER,
        "curation kept no samples",
        "see status.dataset.rejected; lower dataset.curation.minSuccessRate or add sessions",
    ),
    StatusReason(
        "TrainingFailed",
        (Phase.FAILED,),
        FailureKind.SYSTEM,
        "the training workload failed without a known cause",
        f"`{_TRAIN_LOG}` and `{_PODS}`",
    ),
    StatusReason(
        "BackoffLimitExceeded",
        (Phase.FAILED,),
        FailureKind.SYSTEM,
        "every retry of the workload failed (runPolicy.backoffLimit)",
        f"the message has the last exit code; `{_TRAIN_LOG}`",
    ),
    StatusReason(
        "OOMKilled",
        (Phase.FAILED,),
        FailureKind.USER,
        "the container exceeded its memory limit",
        "raise spec.resources.memory or lower spec.training.batchSize in a new job",
    ),
    StatusReason(
        "DeadlineExceeded",
        (Phase.FAILED,),
        FailureKind.USER,
        "runPolicy.activeDeadlineSeconds passed (it counts from the training Job's creation: queueing and retries "
        "included), or curation ran past its fixed 24 h deadline (a dataset source that stopped answering)",
        "raise runPolicy.activeDeadlineSeconds in a new job; it resumes from the workspace's last checkpoint. For "
        "curation: check the source named in spec.dataset.source, then re-create the job",
    ),
    StatusReason(
        "ImagePullFailed",
        (Phase.FAILED,),
        FailureKind.SYSTEM,
        "the trainer image cannot be pulled",
        "check spec.trainerImage or the operator's default trainer image and the registry credentials",
    ),
    StatusReason(
        "InvalidSpec",
        (Phase.FAILED,),
        FailureKind.USER,
        "the spec cannot be read (the CRD schema should have refused it: an older CRD?)",
        "fix the field named in the message; `kubectl apply` the current CRDs",
    ),
    StatusReason(
        "RegistrationFailed",
        (Phase.FAILED,),
        FailureKind.SYSTEM,
        "the API server refused the ModelVersion",
        "the message has the API server's answer; the model is kept in the workspace",
    ),
)


def catalogue() -> list[StatusReason]:
    """Every reason: the operator's, then the trainer image's (a reason both use is listed once)."""
    reasons = list(OPERATOR_REASONS)
    known = {entry.reason for entry in reasons}
    for reason, rule in REASONS.items():
        if reason.value not in known:
            reasons.append(StatusReason(reason.value, (Phase.FAILED,), rule.failure_kind, rule.meaning, rule.advice))
    return reasons
