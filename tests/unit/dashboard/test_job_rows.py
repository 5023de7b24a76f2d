"""The jobs page's row memo: the same page as rendering every row afresh, never a stale row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finetune_dashboard.pages import jobs as jobs_page

from .objects import Obj, job, metrics_map

NOW = datetime(2026, 12, 3, 9, 10, tzinfo=UTC)


def versioned(obj: Obj, resource_version: str, uid: str | None = None) -> Obj:
    """`obj` as the watch delivers it: with a resourceVersion (and the uid given)."""
    meta = {**obj["metadata"], "resourceVersion": resource_version}
    if uid is not None:
        meta["uid"] = uid
    return {**obj, "metadata": meta}


def running(name: str, percent: int, rv: str, namespace: str = "team-a") -> Obj:
    progress = {"stage": "Training", "percent": percent, "estimatedSecondsRemaining": 60}
    return versioned(job(name, namespace, phase="Running", progress=progress, metrics={"trainLoss": 2.0}), rv)


def history(name: str, losses: list[float], rv: str, namespace: str = "team-a") -> Obj:
    points = [[step, loss] for step, loss in enumerate(losses, start=1)]
    return versioned(metrics_map(name, namespace, {"series": {"trainLoss": points}}), rv, uid=f"uid-{name}-metrics")


def both(jobs: dict[tuple[str, str], Obj], metrics: dict[tuple[str, str], Obj], memo: jobs_page.Rows) -> str:
    """The memoised page, checked equal to the page rendered afresh."""
    fresh = jobs_page.render(jobs, metrics, jobs_page.Filters(), NOW)
    remembered = jobs_page.render(jobs, metrics, jobs_page.Filters(), NOW, memo)
    assert remembered == fresh
    return remembered


def test_memoised_page_equals_fresh_one_through_changes_deletions_and_recreations() -> None:
    memo = jobs_page.Rows()
    jobs = {("team-a", f"j{i}"): running(f"j{i}", 10 * i, f"{i}") for i in range(4)}
    jobs[("team-b", "other")] = versioned(job("other", "team-b", phase="Pending"), "9")
    metrics = {("team-a", f"j{i}-metrics"): history(f"j{i}", [3.0, 2.5, 2.0 - i / 10], f"m{i}") for i in range(3)}
    both(jobs, metrics, memo)
    assert len(memo.entries) == 5
    jobs[("team-a", "j1")] = running("j1", 55, "10")
    metrics[("team-a", "j2-metrics")] = history("j2", [3.0, 1.0, 0.5, 0.25], "m10")
    del jobs[("team-a", "j0")]
    jobs[("team-a", "j3")] = versioned(running("j3", 5, "3"), "3", uid="uid-j3-again")  # same version, new uid
    page = both(jobs, metrics, memo)
    assert "55%" in page and "/jobs/team-a/j0" not in page
    assert ("team-a", "j0") not in memo.entries and len(memo.entries) == 4
    only_b = jobs_page.render(jobs, metrics, jobs_page.Filters(namespace="team-b"), NOW, memo)
    assert only_b == jobs_page.render(jobs, metrics, jobs_page.Filters(namespace="team-b"), NOW)


def test_a_changed_job_or_history_changes_its_row_and_an_unchanged_row_is_reused() -> None:
    memo = jobs_page.Rows()
    jobs = {("team-a", "j"): running("j", 10, "1"), ("team-a", "k"): running("k", 20, "2")}
    metrics = {("team-a", "j-metrics"): history("j", [3.0, 2.0], "m1")}
    first = both(jobs, metrics, memo)
    untouched = memo.entries[("team-a", "k")]
    jobs[("team-a", "j")] = running("j", 70, "3")
    second = both(jobs, metrics, memo)
    assert "70%" in second and "70%" not in first
    assert memo.entries[("team-a", "k")] is untouched
    metrics[("team-a", "j-metrics")] = history("j", [3.0, 2.0, 9.0], "m2")
    third = both(jobs, metrics, memo)
    assert third != second  # the sparkline was redrawn from the new history, the status being the same
    del metrics[("team-a", "j-metrics")]
    fourth = both(jobs, metrics, memo)
    assert 'aria-label="train loss of j"' not in fourth


def test_the_age_is_computed_per_view() -> None:
    memo = jobs_page.Rows()
    jobs = {("team-a", "j"): running("j", 10, "1")}
    jobs_page.render(jobs, {}, jobs_page.Filters(), NOW, memo)
    later = NOW + timedelta(hours=3)
    assert jobs_page.render(jobs, {}, jobs_page.Filters(), later, memo) == jobs_page.render(
        jobs, {}, jobs_page.Filters(), later
    )


def test_objects_without_a_resource_version_are_rendered_afresh_and_not_kept() -> None:
    memo = jobs_page.Rows()
    jobs = {("team-a", "j"): running("j", 10, "1")}
    jobs_page.render(jobs, {}, jobs_page.Filters(), NOW, memo)
    jobs[("team-a", "j")] = job("j", phase="Running", progress={"percent": 80})  # no resourceVersion
    assert "80%" in both(jobs, {}, memo)
    assert memo.entries == {}
    jobs[("team-a", "j")] = running("j", 10, "1")
    metrics = {("team-a", "j-metrics"): metrics_map("j", "team-a", {"series": {"trainLoss": [[1, 3.0], [2, 2.0]]}})}
    assert 'class="spark"' in both(jobs, metrics, memo)
    assert memo.entries == {}
