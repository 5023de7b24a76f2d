"""The registry page: models -> versions, their metrics side by side, lineage linked both ways.

A model is a (namespace, modelName) pair: its ModelVersions and, when the operator has created it, its
RegisteredModel, which adds the description, the aliases (alias -> version) and each version's state
(Active or Archived). A RegisteredModel whose versions are all gone still shows, with its aliases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from finetune_dashboard import lookups
from finetune_dashboard.markup import Html, esc, number, url
from finetune_dashboard.pages.layout import link, select, table
from finetune_operator import semver

Obj = dict[str, Any]
METRICS = (("trainLoss", "Train loss"), ("evalLoss", "Eval loss"), ("perplexity", "Perplexity"),
           ("evalExactMatch", "Exact match"), ("evalTokenF1", "Token F1"))  # fmt: skip
# Only chat models with held-out tool calls have these: their columns show when one of the model's versions does.
TOOL_CALL_METRICS = (("toolCallAccuracy", "Tool-call accuracy"), ("toolCallArgumentsMatch", "Tool-call arguments"),
                     ("toolCallsScored", "Tool calls scored"))  # fmt: skip
Model = tuple[str, str]  # (namespace, model name)


def newest_first(version: Obj) -> tuple[int, semver.PrecedenceKey | tuple[()]]:
    """Semver precedence; a version string the registry would not have written sorts last."""
    try:
        return (1, semver.precedence_key(str(version["spec"].get("version", ""))))
    except ValueError:
        return (0, ())


def metric_columns(versions: list[Obj]) -> tuple[tuple[str, str], ...]:
    """The metrics compared side by side for one model's versions."""
    scored = any(key in (v["spec"].get("metrics") or {}) for v in versions for key, _ in TOOL_CALL_METRICS)
    return METRICS + TOOL_CALL_METRICS if scored else METRICS


def headers(metrics: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return ("Version", "State", "Aliases", *[label for _, label in metrics], "Base model", "Dataset sha256",
            "Samples", "Job", "Created")  # fmt: skip


def version_row(
    version: Obj, jobs: lookups.Store, registered: Obj | None, metrics: tuple[tuple[str, str], ...]
) -> list[Html | str]:
    meta, spec = version["metadata"], version["spec"]
    namespace = meta.get("namespace", "")
    data, reference = spec.get("dataset") or {}, spec.get("job") or {}
    job = lookups.job_of(jobs, version)
    job_cell = (
        link(url("jobs", namespace, reference.get("name", "")), reference.get("name", ""))
        if job is not None
        else Html(f'{esc(reference.get("name", "-"))} <span class="muted">(deleted)</span>')
    )
    entry = listed_entry(registered, str(spec.get("version", "")))
    sha = str(data.get("sha256") or "")
    anchor = f"mv-{namespace}-{meta['name']}"
    return [
        Html(f'<span id="{esc(anchor)}">{esc(spec.get("version", "-"))}</span>'),
        str(entry.get("state") or "-"),
        ", ".join(str(alias) for alias in entry.get("aliases") or []) or "-",
        *[number((spec.get("metrics") or {}).get(key)) for key, _ in metrics],
        str(spec.get("baseModel") or "-"),
        Html(f'<code title="{esc(sha)}">{esc(sha[:12] or "-")}</code>'),
        number(data.get("samples")),
        job_cell,
        str(spec.get("createdAt") or meta.get("creationTimestamp") or "-"),
    ]


def listed_entry(registered: Obj | None, version: str) -> Obj:
    """The RegisteredModel's status entry for `version` (state, aliases); empty when it lists none."""
    for entry in ((registered or {}).get("status") or {}).get("versions") or []:
        if isinstance(entry, dict) and entry.get("version") == version:
            return entry
    return {}


def model_summary(registered: Obj | None) -> Html:
    """The description and the aliases as the operator resolved them (status), linked to their version."""
    if registered is None:
        return Html('<p class="muted">no RegisteredModel (yet)</p>')
    namespace = registered["metadata"].get("namespace", "")
    description = (registered.get("spec") or {}).get("description")
    resolved: Obj = (registered.get("status") or {}).get("aliases") or {}
    aliases = [
        f"<li>{esc(alias)} &rarr; "
        + link(f"#{'mv-' + namespace + '-' + str(target.get('modelVersion') or '')}", str(target.get("version")))
        + "</li>"
        for alias, target in sorted(resolved.items())
        if isinstance(target, dict)
    ]
    parts = [f"<p>{esc(description)}</p>" if description else ""]
    parts.append(f'<ul class="aliases" aria-label="aliases">{"".join(aliases)}</ul>' if aliases else "")
    return Html("".join(parts))


def render(
    versions: lookups.Store, jobs: lookups.Store, query: Mapping[str, str], registered: lookups.Store | None = None
) -> Html:
    chosen_ns, chosen_model = query.get("namespace", ""), query.get("model", "")
    models: dict[Model, list[Obj]] = defaultdict(list)
    for version in versions.values():
        models[(version["metadata"].get("namespace", ""), version["spec"].get("modelName", ""))].append(version)
    for namespace, name in registered or {}:  # a RegisteredModel is named after its model
        models.setdefault((namespace, name), [])
    form = Html(
        '<form class="filters" method="get" action="/registry" aria-label="Filter models">'
        + select("namespace", "Namespace", sorted({ns for ns, _ in models}), chosen_ns)
        + select("model", "Model", sorted({m for _, m in models}), chosen_model)
        + '<button type="submit">Filter</button></form>'
    )
    sections = []
    for (namespace, model), found in sorted(models.items()):
        if (chosen_ns and namespace != chosen_ns) or (chosen_model and model != chosen_model):
            continue
        found.sort(key=newest_first, reverse=True)
        record = (registered or {}).get((namespace, model))
        columns = metric_columns(found)
        sections.append(
            f'<section><h2>{esc(model)} <span class="muted">in {esc(namespace)}</span></h2>'
            + model_summary(record)
            + table(f"{len(found)} versions", headers(columns), (version_row(v, jobs, record, columns) for v in found))
            + "</section>"
        )
    empty = "" if sections else '<p class="muted">no model versions</p>'
    return Html("<h1>Model registry</h1>" + form + "".join(sections) + empty)
