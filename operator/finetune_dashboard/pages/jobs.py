"""The jobs page: every job the identity may see, filterable by namespace, phase and model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from finetune_dashboard import lookups, svg
from finetune_dashboard.markup import Html, age, duration, esc, number, parse_time, since, url
from finetune_dashboard.pages.layout import cells, link, select, table, table_markup

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


def loss_sparkline(job: Obj, metrics: lookups.Store) -> Html:
    namespace, name = job["metadata"].get("namespace", ""), job["metadata"]["name"]
    return svg.sparkline(
        lookups.series(lookups.history(metrics, namespace, name), "trainLoss"), f"train loss of {name}"
    )


def row(job: Obj, metrics: lookups.Store, now: datetime, sparkline: Html | None = None) -> list[Html | str]:
    """The job's cells; `sparkline`: its `loss_sparkline`, if already drawn."""
    meta, status = job["metadata"], job["status"]
    namespace, name = meta.get("namespace", ""), meta["name"]
    phase = status.get("phase") or "New"
    last = (status.get("metrics") or {}).get("trainLoss")
    spark = loss_sparkline(job, metrics) if sparkline is None else sparkline
    return [
        link(url("jobs", namespace, name), name),
        namespace,
        Html(f'<span class="phase phase-{esc(phase)}">{esc(phase)}</span>'),
        progress_cell(status),
        Html(spark + (f" {esc(number(last))}" if last is not None else "")),
        model_cell(job),
        age(meta.get("creationTimestamp"), now),
    ]


Version = tuple[object, ...]


def version(obj: Obj | None) -> Version | None:
    """What identifies an object's content: its uid and resourceVersion; () for none, None when unknown."""
    if obj is None:
        return ()
    meta = obj["metadata"]
    return (meta.get("uid"), meta["resourceVersion"]) if meta.get("resourceVersion") else None


@dataclass(frozen=True)
class Row:
    job: Version
    history: Version  # of the job's metrics object, () without one
    sparkline: Html
    cells: Html  # every cell but the age, as `table` writes them
    created: datetime | None


@dataclass
class Rows:
    """Each job's row as last rendered, reused while neither the job nor its metrics history changed.

    At 1,000 jobs, rebuilding every row per view (a 256-point series checked and scaled into a sparkline per
    job) is most of the page's time, yet between two views (5 s of polling) only the ~90 jobs whose trainers
    reported have changed, most of them in their status alone. A row is checked against the uid and
    resourceVersion of the job, its sparkline against those of the job's `<job>-metrics` object: every watch
    event that changes an object carries a new resourceVersion (a recreated one a new uid), so a hit is exactly
    what rendering afresh gives. Only the age cell depends on the clock; it is computed per view. Objects
    without a resourceVersion are rendered afresh, never kept. Rows of jobs gone from the cache are dropped at
    every render, so the memo holds at most one row per job.
    """

    entries: dict[tuple[str, str], Row] = field(default_factory=dict)

    def markup(self, job: Obj, metrics: lookups.Store, now: datetime) -> Html:
        """The job's `<tr>`, as `table` writes `row(job, metrics, now)`."""
        meta = job["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        job_version, history_version = version(job), version(lookups.metrics_of(metrics, *key))
        kept = self.entries.get(key)
        if job_version is None or history_version is None:
            self.entries.pop(key, None)
            return Html(f"<tr>{cells(row(job, metrics, now))}</tr>")
        if kept is None or kept.job != job_version or kept.history != history_version:
            same_history = kept is not None and kept.history == history_version
            spark = kept.sparkline if kept is not None and same_history else loss_sparkline(job, metrics)
            created = parse_time(meta.get("creationTimestamp"))
            kept = Row(job_version, history_version, spark, cells(row(job, metrics, now, spark)[:-1]), created)
            self.entries[key] = kept
        return Html(f"<tr>{kept.cells}<td>{esc(since(kept.created, now))}</td></tr>")

    def forget_all_but(self, present: Mapping[tuple[str, str], Obj]) -> None:
        for gone in self.entries.keys() - present.keys():
            del self.entries[gone]


def render(
    jobs: lookups.Store, metrics: lookups.Store, filters: Filters, now: datetime, memo: Rows | None = None
) -> Html:
    """The page; with `memo`, unchanged jobs' rows come from it (the same markup, see `Rows`)."""
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
    if memo is None:
        listing = table(caption, headers, (row(j, metrics, now) for j in shown), id_="jobs")
    else:
        listing = table_markup(caption, headers, Html("".join(memo.markup(j, metrics, now) for j in shown)), id_="jobs")
        memo.forget_all_but(jobs)
    return Html("<h1>Fine-tuning jobs</h1>" + form + listing)
