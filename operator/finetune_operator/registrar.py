"""Keeps each RegisteredModel's status and its versions' alias annotations in step with the cluster (I/O).

Runs whenever a RegisteredModel or one of its ModelVersions changes; everything it writes is computed from
fresh reads (`modelregistry.model_status`), so a missed event is repaired by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from finetune_operator import modelregistry, naming
from finetune_operator.api import FineTuningJobSpec
from finetune_operator.api.jobconfig import Champion
from finetune_operator.api.registeredmodel import RegisteredModelSpec
from finetune_operator.kube import ApiError, Kube

log = logging.getLogger(__name__)
# Each retry follows a concurrent write to the same RegisteredModel; a handful of racing jobs settle in a few.
PROMOTION_ATTEMPTS = 8


@dataclass(frozen=True)
class Promotion:
    alias: str
    version: str
    previous: str | None
    moved: bool


class Registrar:
    def __init__(self, kube: Kube, clock: Callable[[], datetime]) -> None:
        self.kube = kube
        self.clock = clock

    def ensure(self, namespace: str, model_name: str) -> bool:
        """Create the model's RegisteredModel if it does not exist yet; True when created now.

        Read first: every registration after a model's first would otherwise be a refused (409) write."""
        if self.kube.get("RegisteredModel", namespace, model_name) is not None:
            return False
        return self.kube.create(modelregistry.registered_model(namespace, model_name))

    def promote(self, namespace: str, model_name: str, alias: str, version: str) -> Promotion | None:
        """Point `alias` at `version` unless it already names that or a higher version; None without a model.

        The write carries the resourceVersion it was decided on, so a concurrent change (another job's promotion,
        a person's edit) makes the API server refuse it (409) and the decision is taken again on a fresh read.
        """
        for _ in range(PROMOTION_ATTEMPTS):
            body = self.kube.get("RegisteredModel", namespace, model_name)
            if body is None:
                return None
            current = ((body.get("spec") or {}).get("aliases") or {}).get(alias)
            if current == version or not modelregistry.promotion_moves(current, version):
                return Promotion(alias, version, current, moved=False)
            patch = {
                "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                "spec": {"aliases": {alias: version}},
            }
            try:
                self.kube.patch("RegisteredModel", namespace, model_name, patch)
            except ApiError as error:
                if error.status != 409:
                    raise
                log.info(
                    "RegisteredModel %s/%s changed while promoting %s; deciding again", namespace, model_name, version
                )
                continue
            return Promotion(alias, version, current, moved=True)
        raise ApiError(409, f"RegisteredModel {namespace}/{model_name} kept changing while promoting {version}")

    def champion(self, spec: FineTuningJobSpec, namespace: str) -> tuple[Champion | None, str | None]:
        """`modelregistry.champion_for` from fresh reads; a cluster without the RegisteredModel CRD has none."""
        compare = spec.evaluation.compare_to
        if compare is None:
            return None, None
        model = compare.model or spec.output.model_name
        try:
            registered = self.kube.get("RegisteredModel", namespace, model)
        except ApiError as error:
            if error.status not in (403, 404):
                raise
            registered = None
        versions = self.kube.list("ModelVersion", namespace, f"{naming.LABEL_MODEL}={model}") if registered else []
        return modelregistry.champion_for(spec, registered, versions)

    def promote_reported(
        self, namespace: str, model_name: str, alias: str, version: str
    ) -> tuple[str, str, str] | None:
        """`promote`, told as an Event (type, reason, message) for the job; None when there is nothing to tell."""
        try:
            promotion = self.promote(namespace, model_name, alias, version)
        except ApiError as error:
            return "Warning", "PromotionFailed", f"alias {alias} of model {model_name} not moved to {version}: {error}"
        if promotion is None:
            return "Warning", "PromotionFailed", f"RegisteredModel {model_name} not found: alias {alias} not moved"
        if promotion.moved:
            was = f" (was {promotion.previous})" if promotion.previous else ""
            return "Normal", "Promoted", f"alias {alias} of model {model_name} now names {version}{was}"
        if promotion.previous != version:
            message = f"alias {alias} of model {model_name} stays at {promotion.previous}, higher than {version}"
            return "Normal", "NotPromoted", message
        return None

    def sync(self, namespace: str, model_name: str) -> None:
        body = self.kube.get("RegisteredModel", namespace, model_name)
        if body is None:
            return
        try:
            spec = RegisteredModelSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            log.warning(
                "RegisteredModel %s/%s has a spec the CRD should have refused: %s", namespace, model_name, error
            )
            return
        versions = self.kube.list("ModelVersion", namespace, f"{naming.LABEL_MODEL}={model_name}")
        current = body.get("status") or {}
        status = modelregistry.model_status(
            spec,
            versions,
            generation=body["metadata"].get("generation"),
            previous_conditions=current.get("conditions"),
            now=self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        changed = {key: value for key, value in status.items() if current.get(key) != value}
        if changed:
            self.kube.patch_status("RegisteredModel", namespace, model_name, changed)
        wanted = modelregistry.aliases_by_version(spec, versions)
        for mv in versions:
            name = str(mv["metadata"]["name"])
            have = ((mv.get("metadata") or {}).get("annotations") or {}).get(modelregistry.ALIASES_ANNOTATION, "")
            if have != wanted[name]:
                value = wanted[name] or None
                self.kube.annotate("ModelVersion", namespace, name, {modelregistry.ALIASES_ANNOTATION: value})
