"""RegisteredModels (pure): the object created with a model's first version, and its status from its versions.

The status is recomputed from the ModelVersions that exist and the RegisteredModel's spec, never remembered,
like a job's phase. Aliases reach the versions as the `finetune.dev/aliases` annotation (a ModelVersion's spec
is immutable; its metadata is not), so `kubectl get modelversions` shows them in a column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from finetune_operator import naming, semver
from finetune_operator.api import API_VERSION, FineTuningJobSpec
from finetune_operator.api.jobconfig import CHAMPION_DIR, Champion
from finetune_operator.api.registeredmodel import KIND, MAX_LISTED_VERSIONS, RegisteredModelSpec

ALIASES_ANNOTATION = "finetune.dev/aliases"
ALIASES_RESOLVED = "AliasesResolved"
Obj = Mapping[str, Any]


def registered_model(namespace: str, model_name: str) -> dict[str, Any]:
    """The RegisteredModel created with the first version of `model_name`; not owned by any job."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": model_name,
            "namespace": namespace,
            "labels": {naming.LABEL_MODEL: model_name, "app.kubernetes.io/managed-by": naming.MANAGED_BY},
        },
        "spec": {},
    }


def _spec(mv: Obj) -> Mapping[str, Any]:
    return mv.get("spec") or {}


def _created(mv: Obj) -> str:
    return str(_spec(mv).get("createdAt") or (mv.get("metadata") or {}).get("creationTimestamp") or "")


def alias_targets(spec: RegisteredModelSpec, versions: Sequence[Obj]) -> tuple[dict[str, Obj], list[str]]:
    """Aliases that name a registered, active version -> that ModelVersion; and a problem for each other alias."""
    by_version = {str(_spec(mv).get("version")): mv for mv in versions}
    archived = set(spec.archived or [])
    resolved: dict[str, Obj] = {}
    problems: list[str] = []
    for alias, version in sorted((spec.aliases or {}).items()):
        if version not in by_version:
            problems.append(f"alias {alias} names version {version}, which is not registered")
        elif version in archived:
            problems.append(f"alias {alias} names version {version}, which is archived")
        else:
            resolved[alias] = by_version[version]
    return resolved, problems


def promotion_moves(current: str | None, candidate: str) -> bool:
    """Whether `spec.output.promoteTo` moves an alias now at `current` to `candidate`.

    Only ever forward: of two jobs racing to promote, the higher version wins whatever order their writes land in,
    and a late job never takes the alias back from a newer version. A person may still move it anywhere.
    """
    return current is None or semver.compare(candidate, current) > 0


def aliases_by_version(spec: RegisteredModelSpec, versions: Sequence[Obj]) -> dict[str, str]:
    """ModelVersion name -> its aliases as the annotation carries them ("champion,canary"; "" for none)."""
    resolved, _ = alias_targets(spec, versions)
    names: dict[str, list[str]] = {str(mv["metadata"]["name"]): [] for mv in versions}
    for alias, mv in resolved.items():
        names[str(mv["metadata"]["name"])].append(alias)
    return {name: ",".join(sorted(aliases)) for name, aliases in names.items()}


def model_status(
    spec: RegisteredModelSpec,
    versions: Sequence[Obj],
    *,
    generation: int | None,
    previous_conditions: Sequence[Obj] | None,
    now: str,
) -> dict[str, Any]:
    """The RegisteredModel's status: its versions (newest first), latest, highest, resolved aliases, condition."""
    newest_first = sorted(versions, key=_created, reverse=True)
    resolved, problems = alias_targets(spec, versions)
    annotations = aliases_by_version(spec, versions)
    archived = set(spec.archived or [])
    entries = []
    for mv in newest_first[:MAX_LISTED_VERSIONS]:
        version, name = str(_spec(mv).get("version")), str(mv["metadata"]["name"])
        entry: dict[str, Any] = {
            "version": version,
            "modelVersion": name,
            "state": "Archived" if version in archived else "Active",
        }
        if annotations.get(name):
            entry["aliases"] = annotations[name].split(",")
        if _created(mv):
            entry["createdAt"] = _created(mv)
        eval_loss = (_spec(mv).get("metrics") or {}).get("evalLoss")
        if isinstance(eval_loss, int | float):
            entry["evalLoss"] = float(eval_loss)
        entries.append(entry)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "versionCount": len(versions),
        "versions": entries,
        "aliases": {
            alias: {
                "version": str(_spec(mv).get("version")),
                "modelVersion": str(mv["metadata"]["name"]),
                "uri": (_spec(mv).get("artifact") or {}).get("uri"),
            }
            for alias, mv in resolved.items()
        },
        "conditions": [_aliases_condition(problems, generation, previous_conditions, now)],
    }
    if versions:
        status["latestVersion"] = str(_spec(newest_first[0]).get("version"))
        status["highestVersion"] = max((str(_spec(mv).get("version")) for mv in versions), key=semver.precedence_key)
    return status


def _aliases_condition(
    problems: list[str], generation: int | None, previous: Sequence[Obj] | None, now: str
) -> dict[str, Any]:
    status = "False" if problems else "True"
    before = next((c for c in previous or [] if c.get("type") == ALIASES_RESOLVED), None)
    changed = before is None or before.get("status") != status
    return {
        "type": ALIASES_RESOLVED,
        "status": status,
        "reason": "UnresolvedAlias" if problems else "Resolved",
        "message": "; ".join(problems) if problems else "every alias names an active version",
        "lastTransitionTime": now if changed else str(before.get("lastTransitionTime") or now),  # type: ignore[union-attr]
        "observedGeneration": generation,
    }


def champion_for(
    spec: FineTuningJobSpec, registered: Obj | None, versions: Sequence[Obj]
) -> tuple[Champion | None, str | None]:
    """The version `evaluation.compareTo` names now, or why it cannot be compared against.

    (None, None): nothing to compare against yet (no compareTo, no RegisteredModel, or the alias is not set), so
    a model's first job, or a GitOps job re-applied before any promotion, trains without the gate.
    """
    compare = spec.evaluation.compare_to
    if compare is None or registered is None:
        return None, None
    model = compare.model or spec.output.model_name
    model_spec = registered.get("spec") or {}
    version = (model_spec.get("aliases") or {}).get(compare.alias)
    if version is None:
        return None, None
    named = f"alias {compare.alias} of model {model} names version {version}"
    mv = next((v for v in versions if semver.compare(str(_spec(v).get("version")), str(version)) == 0), None)
    if mv is None:
        return None, f"{named}, which is not registered"
    if version in (model_spec.get("archived") or []):
        return None, f"{named}, which is archived"
    artifact = _spec(mv).get("artifact") or {}
    if not artifact.get("pvc"):  # spec.output.s3: the training pod mounts the champion's claim, a bucket has none
        return None, f"{named}, whose model is in a bucket ({artifact.get('uri')}); compareTo reads models on a claim"
    adapter = bool(artifact.get("adapter"))
    if adapter and _spec(mv).get("baseModel") != spec.base_model.name:
        base = _spec(mv).get("baseModel")
        return None, f"{named}, a LoRA adapter on base model {base}; this job trains {spec.base_model.name}"
    champion = Champion(
        model=model,
        alias=compare.alias,
        version=str(version),
        model_version=str(mv["metadata"]["name"]),
        claim=str(artifact.get("pvc")),
        path=f"{CHAMPION_DIR}/{str(artifact.get('path', '')).lstrip('/')}",
        adapter=adapter,
        max_regression=compare.max_regression,
    )
    return champion, None
