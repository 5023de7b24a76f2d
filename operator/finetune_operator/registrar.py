"""Keeps each RegisteredModel's status and its versions' alias annotations in step with the cluster (I/O).

Runs whenever a RegisteredModel or one of its ModelVersions changes; everything it writes is computed from
fresh reads (`modelregistry.model_status`), so a missed event is repaired by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError

from finetune_operator import modelregistry, naming
from finetune_operator.api.registeredmodel import RegisteredModelSpec
from finetune_operator.kube import Kube

log = logging.getLogger(__name__)


class Registrar:
    def __init__(self, kube: Kube, clock: Callable[[], datetime]) -> None:
        self.kube = kube
        self.clock = clock

    def ensure(self, namespace: str, model_name: str) -> bool:
        """Create the model's RegisteredModel if it does not exist yet; True when created now."""
        return self.kube.create(modelregistry.registered_model(namespace, model_name))

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
