"""Whether a job's dataset source exists yet: a job waits in Pending (SourceNotFound) until it does.

Read by the reconciler before curation starts; the sweep re-reads waiting jobs (no watch tells when someone
else's ConfigMap or claim appears).
"""

from __future__ import annotations

from finetune_operator.api import FineTuningJobSpec
from finetune_operator.kube import Kube
from finetune_operator.observation import SourceState


def dataset_source(kube: Kube, spec: FineTuningJobSpec, namespace: str) -> tuple[SourceState, str]:
    """The source's state and what the job waits for, in words for the status message."""
    source = spec.dataset.source
    if source.s3 is not None:
        # The operator never holds the job's bucket credentials: curation checks the bucket and fails
        # SourceNotFound / SourceAccessDenied naming the URI.
        return SourceState.AVAILABLE, source.s3.uri
    if source.config_map is not None:
        name, key = source.config_map.name, source.config_map.key
        config_map = kube.get("ConfigMap", namespace, name)
        if config_map is None:
            return SourceState.MISSING, f"ConfigMap {name} to exist (it holds the sessions under key {key})"
        present = key in (config_map.get("data") or {}) or key in (config_map.get("binaryData") or {})
        what = f"ConfigMap {name} to have the key {key} (kubectl get configmap -n {namespace} {name} -o yaml)"
        return (SourceState.AVAILABLE if present else SourceState.MISSING), what
    assert source.pvc is not None
    what = f"PersistentVolumeClaim {source.pvc.claim_name} to exist"
    found = kube.get("PersistentVolumeClaim", namespace, source.pvc.claim_name)
    return (SourceState.AVAILABLE if found else SourceState.MISSING), what
