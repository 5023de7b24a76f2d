"""The dashboard in a real browser (Debian's chromium driven by Playwright) against a really trained job.

Live updates first: with the jobs page open, a job is applied whose sessions ConfigMap does not exist yet, so it
waits Pending (SourceNotFound); then its ConfigMap arrives, with no session in it, and the job fails at curation:
the page must show the new row and turn it Failed by itself (no reload). Then, on the session's trained quickstart
(`trained_quickstart`, curated and trained for real by the node agent), the job page, reached with the keyboard,
draws the curves with the points the trainer recorded, and the registry page shows the version and links back to
the job; last, the job page tails the training log (pods/log, served by the node agent as by a kubelet). On the
way: the curation pod reported its progress with the job's own identity (its last report's records read equal the
dataset's), and the demo's tiny model visibly learns (the last recorded train loss at most half the first).
Screenshots are kept under $FTO_ARTIFACTS_DIR/dashboard (default: test-artifacts/dashboard in the checkout).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from dashboard_harness import DashboardProcess
from operator_harness import OperatorProcess, get_job, wait_phase
from trained import TrainedQuickstart, quickstart

import localcluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("FTO_ARTIFACTS_DIR", REPO / "test-artifacts")) / "dashboard"


def browser_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("no chromium on PATH: hack/install-chromium.sh installs it (needs apt-get as root)")
    return found


def recorded_series(kubectl: Callable[..., str], namespace: str, job: str) -> dict[str, list[list[float]]]:
    config_map = json.loads(kubectl("-n", namespace, "get", "configmap", f"{job}-metrics", "-o", "json"))
    series: dict[str, list[list[float]]] = json.loads(config_map["data"]["history.json"])["series"]
    return series


def test_the_dashboard_shows_a_really_trained_job_live_with_curves_logs_and_its_version(
    kubectl: Callable[..., str],
    namespace: str,
    cluster: localcluster.ClusterInfo,
    operator_process: OperatorProcess,
    trained_quickstart: TrainedQuickstart,
) -> None:
    chromium = browser_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    trained, trained_job = trained_quickstart.namespace, trained_quickstart.name
    log = cluster.state_dir / "logs" / "dashboard-browser.log"
    with (
        DashboardProcess(cluster.kubeconfig, log, "--namespace", namespace, "--namespace", trained) as dashboard,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(dashboard.url + "/")
        row = page.locator("#jobs tbody tr", has=page.get_by_role("link", name=trained_job, exact=True))
        sync_api.expect(row).to_be_visible()
        page.evaluate("window.__stillTheSamePage = true")
        # Live updates: a new row appears, waits Pending for its sessions, and turns Failed once they arrive empty,
        # while the page stays open (no reload, no navigation).
        kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(quickstart("live")))
        live = page.locator("#jobs tbody tr", has=page.get_by_role("link", name="live", exact=True))
        sync_api.expect(live.locator(".phase")).to_have_text("Pending", timeout=120_000)
        empty = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "quickstart-sessions"},
                 "data": {"sessions.jsonl": ""}}  # fmt: skip
        kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(empty))
        sync_api.expect(live.locator(".phase")).to_have_text("Failed", timeout=300_000)
        assert page.evaluate("window.__stillTheSamePage") is True
        failed = wait_phase(kubectl, namespace, "live", ("Failed",), timeout=60, operator=operator_process)
        assert failed["status"]["reason"] == "NoSamplesAfterCuration", failed["status"]

        job = get_job(kubectl, trained, trained_job)
        version = job["status"]["model"]["version"]
        # The curation pod's last report (every byte read) stays in the status beside the dataset it built.
        curated = job["status"]["progress"]
        assert curated["recordsRead"] == job["status"]["dataset"]["sourceRecords"] > 0, job["status"]
        assert curated["sourceBytesRead"] == curated["sourceBytes"] > 0, curated
        sync_api.expect(row).to_contain_text(version)
        page.screenshot(path=str(ARTIFACTS / "jobs.png"), full_page=True)

        # The filters are labelled controls; keyboard only: focus, choose, submit.
        page.get_by_label("Phase").focus()
        page.get_by_label("Phase").select_option("Completed")
        page.get_by_role("button", name="Filter").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**phase=Completed**")
        sync_api.expect(row).to_be_visible()

        # The job page, reached with the keyboard.
        page.get_by_role("link", name=trained_job, exact=True).focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/jobs/{trained}/{trained_job}")
        series = recorded_series(kubectl, trained, trained_job)
        points = {name: len(values) for name, values in series.items()}
        assert points["trainLoss"] >= 2 and points["evalLoss"] >= 1, points
        first_loss, last_loss = series["trainLoss"][0][1], series["trainLoss"][-1][1]
        assert last_loss <= first_loss / 2, f"the demo's model barely learned: train loss {first_loss} -> {last_loss}"
        for series, name in (("train loss", "trainLoss"), ("eval loss", "evalLoss"), ("learning rate", "learningRate"),
                             ("tokens/s", "tokensPerSecond")):  # fmt: skip
            drawn = page.locator(f'polyline[data-series="{series}"]')
            sync_api.expect(drawn).to_have_attribute("data-points", str(points[name]))
        sync_api.expect(page.locator("#events")).to_contain_text("ModelRegistered")
        sync_api.expect(page.get_by_text("resolved by the trainer")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "job.png"), full_page=True)
        page.screenshot(path=str(ARTIFACTS / "job-top.png"))  # the README's (docs/images/dashboard-job.png)

        # The registry page: the version, its metrics, and the link back to the job.
        page.get_by_role("link", name=job["status"]["model"]["modelVersion"]).click()
        page.wait_for_url("**/registry?**")
        sync_api.expect(page.locator("table")).to_contain_text(version)
        back = page.get_by_role("link", name=trained_job, exact=True)
        sync_api.expect(back).to_have_attribute("href", f"/jobs/{trained}/{trained_job}")
        page.screenshot(path=str(ARTIFACTS / "registry.png"), full_page=True)

        # The log tail reads pods/log through the API server, which asks the node's kubelet endpoint.
        back.click()
        page.wait_for_url(f"**/jobs/{trained}/{trained_job}")
        sync_api.expect(page.locator("#log-lines")).to_contain_text('"train_log"', timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "job-log.png"), full_page=True)
        browser.close()
