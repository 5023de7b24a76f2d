"""One reconciliation of one FineTuningJob: observe, derive, act, write status.

Synchronous by design (it runs in a worker thread; the official client blocks). The Kopf layer feeds it a
`JobView` built from its watch indexes (cheap, possibly a moment stale) or from fresh reads (the sweep);
staleness is harmless because every action is idempotent and the next watch event reconciles again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from finetune_operator import children, naming, publish, registry, rfc3339
from finetune_operator.api import API_VERSION, FailureKind, FineTuningJobSpec, Phase
from finetune_operator.api.status import bounded
from finetune_operator.backends import TrainingBackend, backend_for
from finetune_operator.config import Settings
from finetune_operator.creation import Refusal, create_child, unless_pods_refused, unless_unprovisioned
from finetune_operator.kube import ApiError, Kube, event_for
from finetune_operator.lifecycle import TERMINAL_PHASES, derive
from finetune_operator.observation import Action, Decision, Observed, SourceState, WorkloadPhase
from finetune_operator.observe import kueue_waiting_message, no_kueue_workload_seconds, storage_state, workload_state
from finetune_operator.registrar import Registrar
from finetune_operator.sources import dataset_source
from finetune_operator.status import dataset_status, next_status, tracking_degraded

Obj = dict[str, Any]
log = logging.getLogger(__name__)

# Storage and identity before the workloads that mount and use them.
ACTION_ORDER = (
    Action.STOP_WORKLOADS,
    Action.PREPARE,
    Action.CREATE_CURATION,
    Action.CREATE_TRAINING,
    Action.RESTART_TRAINING,
    Action.CREATE_PUBLISH,
    Action.REGISTER_MODEL,
)
CURATION = "curation"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobView:
    """A FineTuningJob and what exists around it."""

    body: Mapping[str, Any]
    workloads: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # component -> batch/v1 Job
    pods: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)  # component -> pods
    pvc: Mapping[str, Any] | None = None
    model_versions: Sequence[Mapping[str, Any]] = field(default_factory=list)  # of the job's model
    active_training_elsewhere: int = 0  # training workloads of other jobs in the namespace
    admission: Mapping[str, Any] | None = None  # Kueue's Workload for the training workload, when Kueue queues it

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"]["namespace"])

    @property
    def uid(self) -> str:
        return str(self.body["metadata"]["uid"])

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str
    name: str | None = None
    """A fixed name posts the Event at most once (a second post is a harmless 409); None generates one."""


# Reasons that follow each other in every job: a change between them within a phase posts no Event.
ROUTINE_REASONS = frozenset({"Creating", "CurationStarting", "Curating", "TrainingStarting", "Training", "Registering"})


@dataclass
class Outcome:
    """What one reconciliation did, for the Kopf layer to report (events, metrics)."""

    previous_phase: str | None
    phase: str
    patch: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    registered: bool = False
    written: Mapping[str, Any] | None = None  # the job as the API server returned it after our status write


class Reconciler:
    def __init__(self, kube: Kube, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.kube = kube
        self.settings = settings
        self.clock = clock
        self.registrar = Registrar(kube, clock)

    # ------------------------------------------------------------------------------------ observe

    def observe(self, view: JobView, spec: FineTuningJobSpec, backend: TrainingBackend) -> Observed:
        status = view.status
        curation = workload_state(view.workloads.get(CURATION), view.pods.get(CURATION, []))
        training_job = view.workloads.get(backend.component)
        training = backend.observe(training_job, view.pods.get(backend.component, []))
        phase = Phase(status["phase"]) if status.get("phase") else None
        source, description = SourceState.AVAILABLE, "the dataset source"
        waited = 0.0
        if curation.phase is WorkloadPhase.ABSENT and phase not in TERMINAL_PHASES:
            source, description = dataset_source(self.kube, spec, view.namespace)
            created = rfc3339.parse(view.body["metadata"].get("creationTimestamp"))
            waited = (self.clock() - created).total_seconds() if created else 0.0
        capacity_blocked = None
        limit = self.settings.max_active_per_namespace
        if limit and training.phase is WorkloadPhase.ABSENT and view.active_training_elsewhere >= limit:
            capacity_blocked = f"namespace {view.namespace} already runs {view.active_training_elsewhere} training"
            capacity_blocked += f" workloads (operator limit {limit})"
        version_conflict = None
        if training.phase in (WorkloadPhase.ABSENT, WorkloadPhase.SUSPENDED):
            version_conflict = registry.explicit_version_conflict(spec, view.model_versions, view.uid)
        champion, champion_problem = None, None
        if training.phase is WorkloadPhase.ABSENT and spec.evaluation.compare_to and phase not in TERMINAL_PHASES:
            champion, champion_problem = self.registrar.champion(spec, view.namespace)
        published = workload_state(view.workloads.get(publish.COMPONENT), view.pods.get(publish.COMPONENT, []))
        store = spec.output.store
        # Read only while the copy is about to start: a missing store is a wait with a reason, not a stuck pod.
        store_missing = bool(
            spec.output.pvc
            and training.phase is WorkloadPhase.SUCCEEDED
            and published.phase is WorkloadPhase.ABSENT
            and phase not in TERMINAL_PHASES
            and self.kube.get("PersistentVolumeClaim", view.namespace, spec.output.pvc) is None
        )
        return Observed(
            phase=phase,
            job_name=view.name,
            namespace=view.namespace,
            cancel=spec.cancel,
            storage=storage_state(view.pvc),
            source=source,
            source_missing_seconds=waited,
            source_wait_seconds=float(self.settings.source_wait_seconds),
            source_description=description,
            curation=curation,
            training=training,
            trainer_stage=(status.get("progress") or {}).get("stage"),
            max_eval_loss=spec.evaluation.max_eval_loss,
            min_tool_call_accuracy=spec.evaluation.min_tool_call_accuracy,
            model_registered=registry.registered_by(view.model_versions, view.uid) is not None,
            model_store=store,
            model_store_missing=store_missing,
            publish=published,
            version_conflict=version_conflict,
            champion_problem=champion_problem,
            champion=champion,
            capacity_blocked=capacity_blocked,
            queue_name=spec.queue_name,
            admission_message=kueue_waiting_message(view.admission),
            no_kueue_workload_seconds=no_kueue_workload_seconds(training_job, view.admission, self.clock()),
            kueue_workload_wait_seconds=float(self.settings.kueue_workload_wait_seconds),
            gpus=spec.resources.gpus,
            gpu_resource_name=spec.resources.gpu_resource_name,
            nodes=spec.resources.nodes,
            backoff_limit=spec.run_policy.backoff_limit,
            retried_attempts=tuple(status.get("retriedAttempts") or ()),
        )

    # ---------------------------------------------------------------------------------- reconcile

    def reconcile(self, view: JobView) -> Outcome:
        previous = view.status.get("phase")
        now = rfc3339.render(self.clock())
        try:
            spec = FineTuningJobSpec.model_validate(view.body.get("spec") or {})
        except ValidationError as error:
            # The CRD schema should have refused it; never act on a spec we cannot read.
            return self._invalid_spec(view, error, now)
        backend = backend_for(spec)
        observed = self.observe(view, spec, backend)
        states = {
            CURATION: observed.curation,
            backend.component: observed.training,
            publish.COMPONENT: observed.publish,
        }
        decision = unless_pods_refused(self.kube, view.workloads, states, derive(observed))
        decision = unless_unprovisioned(self.kube, view.pvc, decision)
        ref = children.JobRef(view.name, view.namespace, view.uid, spec, observed.champion)
        outcome = Outcome(previous_phase=previous, phase=decision.phase.value, patch={})
        model: Mapping[str, Any] | None = None
        for action in (a for a in ACTION_ORDER if a in decision.actions):
            if action is Action.REGISTER_MODEL:
                model, decision = self._register(view, spec, backend, observed, decision, now)
                outcome.registered = model is not None
                if model is not None and spec.output.promote_to:
                    # Idempotent: runs again when a crash came between the registration and the status write.
                    report = self.registrar.promote_reported(
                        view.namespace, spec.output.model_name, spec.output.promote_to, str(model["version"])
                    )
                    outcome.events += [Event(*report)] if report else []
            else:
                try:
                    outcome.created += self._act(action, ref, view, backend)
                except Refusal as refused:  # the API server's answer, or another's object under the child's name
                    decision = refused.decide(decision)
                    break
        if model is None and observed.model_registered:
            mv = registry.registered_by(view.model_versions, view.uid)
            model = _model_ref(mv) if mv else None
        outcome.phase = decision.phase.value
        outcome.patch = next_status(
            view.status,
            decision,
            observed,
            generation=view.body["metadata"].get("generation"),
            now=now,
            model=model,
        )
        attempts = int(outcome.patch.get("attempts") or 0)
        if attempts > 1 and outcome.patch.get("trainingPods"):
            pod = outcome.patch["trainingPods"][-1]
            outcome.events.append(Event("Normal", "AttemptStarted", f"training attempt {attempts} (pod {pod})"))
        if previous != decision.phase.value:
            kind = "Warning" if decision.phase is Phase.FAILED else "Normal"
            message = f"{previous or 'New'} -> {decision.phase.value}: {decision.message}".rstrip(": ")
            outcome.events.append(Event(kind, decision.reason or decision.phase.value, message))
        elif view.status.get("reason") != decision.reason and decision.reason not in ROUTINE_REASONS:
            # Why a job waits changed (e.g. from Kueue admission to GPU capacity): once per reason and job, so
            # a flapping cause cannot flood the namespace's Events.
            name = naming.bounded(f"{view.name}.{view.uid[:8]}.{decision.reason.lower()}", 253)
            outcome.events.append(Event("Normal", decision.reason, decision.message, name=name))
        if degraded := tracking_degraded(outcome.patch):  # once per job: the Event's name is fixed
            name = naming.bounded(f"{view.name}.{view.uid[:8]}.trackingdegraded", 253)
            outcome.events.append(Event("Warning", "TrackingDegraded", degraded, name=name))
        if outcome.patch:
            outcome.written = self.kube.patch_status("FineTuningJob", view.namespace, view.name, outcome.patch)
        if outcome.written is not None:
            self._post_events(view, outcome.events, now)
        return outcome

    def _post_events(self, view: JobView, events: list[Event], now: str) -> None:
        """Events are best effort: a failure to post one never fails the reconciliation."""
        body = {"apiVersion": API_VERSION, "kind": "FineTuningJob", "metadata": view.body["metadata"]}
        for event in events:
            try:
                posted = event_for(body, event.type, event.reason, event.message, now, name=event.name)
                if event.name is None:
                    self.kube.post(posted)
                else:
                    self.kube.create(posted)
            except ApiError as error:
                log.warning("could not post event %s on %s/%s: %s", event.reason, view.namespace, view.name, error)

    def _invalid_spec(self, view: JobView, error: ValidationError, now: str) -> Outcome:
        previous = view.status.get("phase")
        if previous in {p.value for p in TERMINAL_PHASES}:
            return Outcome(previous, str(previous), {})
        first = error.errors()[0]
        field = ".".join(["spec", *(str(part) for part in first.get("loc", ()))])
        message = bounded(f"{field} is invalid: {first.get('msg')}; create the job again with it fixed")
        patch = {
            "phase": Phase.FAILED.value,
            "reason": "InvalidSpec",
            "message": message,
            "failureKind": FailureKind.USER.value,
            "completionTime": now,
        }
        outcome = Outcome(previous, Phase.FAILED.value, patch, [Event("Warning", "InvalidSpec", message)])
        outcome.written = self.kube.patch_status("FineTuningJob", view.namespace, view.name, patch)
        if outcome.written is not None:
            self._post_events(view, outcome.events, now)
        return outcome

    def _act(self, action: Action, ref: children.JobRef, view: JobView, backend: TrainingBackend) -> list[str]:
        settings = self.settings
        if action is Action.PREPARE:
            if view.pvc is not None and view.status.get("phase"):
                # A reconciliation writes the job's first phase only after all of its creates succeeded, so
                # these exist already: creating them again on every event until curation starts costs six
                # refused (409) writes per event. A crash half-way leaves no phase, and this runs again.
                return []
            objects = [
                children.workspace_pvc(ref),
                children.config_map(ref),
                children.metrics_config_map(ref),
                children.trainer_service_account(ref),
                children.trainer_role(ref),
                children.trainer_role_binding(ref),
            ]
        elif action is Action.CREATE_CURATION:
            objects = [children.curation_job(ref, settings)]
        elif action is Action.CREATE_TRAINING:
            objects = backend.children(ref, settings)  # ref.champion: the version to beat, as observed
        elif action is Action.CREATE_PUBLISH:
            objects = [self._publish_job(ref, view, backend)]
        elif action in (Action.STOP_WORKLOADS, Action.RESTART_TRAINING):
            restart = action is Action.RESTART_TRAINING
            curation = view.workloads.get(CURATION)
            if curation is not None and not restart:
                self.kube.delete("Job", view.namespace, str(curation["metadata"]["name"]))
            # A restart deletes in the foreground: the Job stays until its pods are gone, so no new pod starts
            # beside an old one that is still writing its checkpoint.
            for obj in backend.stop(view.workloads.get(backend.component)):
                self.kube.delete(obj.kind, view.namespace, obj.name, "Foreground" if restart else "Background")
            return []
        else:
            return []
        return [f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects if create_child(self.kube, obj, ref.uid)]

    def _publish_job(self, ref: children.JobRef, view: JobView, backend: TrainingBackend) -> dict[str, Any]:
        """The copy Job, for the version this job will register (chosen now, from fresh reads)."""
        spec = ref.spec
        existing = self.kube.list("ModelVersion", view.namespace, f"{naming.LABEL_MODEL}={spec.output.model_name}")
        version = registry.choose_version(spec, existing)
        training = backend.observe(view.workloads.get(backend.component), view.pods.get(backend.component, []))
        source = backend.artifact(view.name, training.result).path
        return publish.publish_job(ref, self.settings, version, source)

    def _register(
        self,
        view: JobView,
        spec: FineTuningJobSpec,
        backend: TrainingBackend,
        observed: Observed,
        decision: Decision,
        now: str,
    ) -> tuple[Mapping[str, Any] | None, Decision]:
        """Create the ModelVersion (fresh reads, retry on name conflicts) and complete the job."""
        selector = f"{naming.LABEL_MODEL}={spec.output.model_name}"
        training = observed.training.result
        self._ensure_registered_model(view.namespace, spec.output.model_name)
        for _ in range(10):
            existing = self.kube.list("ModelVersion", view.namespace, selector)
            mine = registry.registered_by(existing, view.uid)
            if mine is not None:
                return _model_ref(mine), derive(replace(observed, model_registered=True))
            conflict = registry.explicit_version_conflict(spec, existing, view.uid)
            if conflict:
                return None, derive(replace(observed, version_conflict=conflict))
            # A published copy fixed its version (it is in the copy's path); otherwise the next free one.
            copy = observed.publish.result.model
            version = copy.version if copy and copy.version else registry.choose_version(spec, existing)
            if copy and copy.version and registry.version_taken(existing, spec.output.model_name, version):
                message = f"version {version} was registered by another job while this job copied its model to "
                message += f"{copy.uri or copy.path} in the model store"
                return None, Decision(Phase.FAILED, "VersionExists", message, FailureKind.USER, dataset_ready=True)
            obj = registry.model_version(
                job_name=view.name,
                namespace=view.namespace,
                job_uid=view.uid,
                spec=spec,
                version=version,
                artifact=publish.artifact(copy) or backend.artifact(view.name, training),
                dataset=dataset_status(observed.curation.result) or {},
                training_result=training,
                created_at=now,
                trainer_image=spec.trainer_image or self.settings.trainer_image,
            )
            try:
                if self.kube.create(obj):
                    return _model_ref(obj), derive(replace(observed, model_registered=True))
            except ApiError as error:
                if error.status != 422:
                    raise
                return None, Decision(Phase.FAILED, "RegistrationFailed", error.message, FailureKind.SYSTEM)
            log.info("version %s of %s was taken concurrently; retrying", version, spec.output.model_name)
        return None, decision

    def _ensure_registered_model(self, namespace: str, model_name: str) -> None:
        """The version's RegisteredModel; a cluster without its CRD (or the right to create it) still registers."""
        try:
            self.registrar.ensure(namespace, model_name)
        except ApiError as error:
            if error.status not in (403, 404):
                raise
            log.warning("cannot create RegisteredModel %s/%s: %s", namespace, model_name, error)


def _model_ref(mv: Mapping[str, Any]) -> dict[str, Any]:
    spec = mv.get("spec") or {}
    return {
        "name": spec.get("modelName"),
        "version": spec.get("version"),
        "modelVersion": (mv.get("metadata") or {}).get("name"),
        "uri": (spec.get("artifact") or {}).get("uri"),
    }
