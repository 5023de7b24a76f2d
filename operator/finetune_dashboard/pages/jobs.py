"""The jobs page: every job the identity may see, filterable by namespace, phase and model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from finetune_dashboard import lookups, svg
from finetune_dashboard.markup import Html, age, duration, esc, number, url
from finetune_dashboard.pages.layout import link, select, table

Obj = dict[str, Any]


@dataclass(frozen=True)
class Filters:
    namespace: str = ""
    phase: str = ""
    model: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        return cls(query.get("namespace", ""), query.get("phase", ""), query.get("model", ""))

    def keeps(self, job: Obj) -> bool:
        meta, spec, status = job["metadata"], job["spec"], job["status"]
        return (
            (not self.namespace or meta.get("namespace") == self.namespace)
            and (not self.phase or status.get("phase") == self.phase)
            and (not self.model or (spec.get("output") or {}).get("modelName") == self.model)
        )


MIB = 1 << 20


def progress_cell(status: Obj) -> Html:
    progress = status.get("progress") or {}
    percent = progress.get("percent")
    if percent is None:
        return Html('<span class="muted">-</span>')
    eta = progress.get("estimatedSecondsRemaining")
    stage = progress.get("stage") or ""
    label = f"{stage} {percent}%" + (f", about {duration(eta)} left" if eta is not None else "")
    text = f"{percent}%" + (f" · ETA {duration(eta)}" if eta is not None else "")
    if stage == "Curating" and progress.get("recordsRead") is not None:
        # the curation's percentage is of the source bytes: the records read say what it has got through
        text = f"curating: {number(progress['recordsRead'])} records read · {text}"
    if stage == "Downloading" and progress.get("downloadBytes") is not None:
        done, total = (round(int(progress.get(key) or 0) / MIB) for key in ("downloadedBytes", "downloadBytes"))
        text = f"downloading {progress.get('downloading') or ''}: {number(done)} of {number(total)} MiB · {text}"
    return Html(
        f'<progress max="100" value="{int(percent)}" aria-label="{esc(label)}">{int(percent)}%</progress> {esc(text)}'
    )


def model_cell(job: Obj) -> Html:
    model = job["status"].get("model") or {}
    if not model.get("version"):
        return Html(esc((job["spec"].get("output") or {}).get("modelName") or "-"))
    namespace = job["metadata"].get("namespace", "")
    href = url(
        "registry",
        query={"namespace": namespace, "model": model.get("name") or ""},
        anchor=f"mv-{namespace}-{model.get('modelVersion') or ''}",
    )
    return link(href, f"{model.get('name')} {model['version']}")


def row(job: Obj, metrics: lookups.Store, now: datetime) -> list[Html | str]:
    meta, status = job["metadata"], job["status"]
    namespace, name = meta.get("namespace", ""), meta["name"]
    loss = lookups.series(lookups.history(metrics, namespace, name), "trainLoss")
    phase = status.get("phase") or "New"
    last = (status.get("metrics") or {}).get("trainLoss")
    return [
        link(url("jobs", namespace, name), name),
        namespace,
        Html(f'<span class="phase phase-{esc(phase)}">{esc(phase)}</span>'),
        progress_cell(status),
        Html(svg.sparkline(loss, f"train loss of {name}") + (f" {esc(number(last))}" if last is not None else "")),
        model_cell(job),
        age(meta.get("creationTimestamp"), now),
    ]


def render(jobs: lookups.Store, metrics: lookups.Store, filters: Filters, now: datetime) -> Html:
    everything = list(jobs.values())
    shown = [j for j in everything if filters.keeps(j)]
    shown.sort(key=lambda j: j["metadata"].get("creationTimestamp") or "", reverse=True)
    namespaces = sorted({j["metadata"].get("namespace", "") for j in everything})
    phases = sorted({j["status"].get("phase") or "New" for j in everything})
    models = sorted({(j["spec"].get("output") or {}).get("modelName") or "" for j in everything} - {""})
    form = Html(
        '<form class="filters" method="get" action="/" aria-label="Filter jobs">'
        + select("namespace", "Namespace", namespaces, filters.namespace)
        + select("phase", "Phase", phases, filters.phase)
        + select("model", "Model", models, filters.model)
        + '<button type="submit">Filter</button></form>'
    )
    headers = ("Job", "Namespace", "Phase", "Progress", "Train loss", "Model", "Age")
    caption = f"{len(shown)} of {len(everything)} FineTuningJobs"
    return Html(
        "<h1>Fine-tuning jobs</h1>" + form + table(caption, headers, (row(j, metrics, now) for j in shown), id_="jobs")
    )
