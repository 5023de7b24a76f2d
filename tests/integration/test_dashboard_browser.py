"""The dashboard in a real browser (Debian's chromium driven by Playwright) against a really trained job.

The quickstart job is curated and trained for real by the node agent while the jobs page is open: the page
must turn the job Completed by itself (live updates, no reload). Then the job page, reached with the
keyboard, draws the curves with the points the trainer recorded, and the registry page shows the version and
links back to the job; last, the job page tails the training log (pods/log, served by the node agent as by a
kubelet). On the way: the curation pod reported its progress with the job's own identity (its last report's
records read equal the dataset's), and the demo's tiny model visibly learns (the last recorded train loss at
most half the first). Screenshots are kept under $FTO_ARTIFACTS_DIR/dashboard (default:
test-artifacts/dashboard in the checkout).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from dashboard_harness import DashboardProcess
from operator_harness import OperatorProcess, wait_phase
from test_operator_e2e import quickstart, setup

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
    tmp_path: Path,
) -> None:
    chromium = browser_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    setup(kubectl, namespace, quickstart("shown", epochs=3))  # the demo's job as manifests/samples has it
    log = cluster.state_dir / "logs" / "dashboard-browser.log"
    with (
        DashboardProcess(cluster.kubeconfig, log, "--namespace", namespace) as dashboard,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(dashboard.url + "/")
        row = page.locator("#jobs tbody tr", has=page.get_by_role("link", name="shown", exact=True))
        sync_api.expect(row).to_be_visible()
        page.evaluate("window.__stillTheSamePage = true")
        # Live updates: the row turns Completed while the page stays open (no reload, no navigation).
        sync_api.expect(row.locator(".phase")).to_have_text("Completed", timeout=600_000)
        assert page.evaluate("window.__stillTheSamePage") is True
        job = wait_phase(kubectl, namespace, "shown", ("Completed",), timeout=60, operator=operator_process)
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
        page.get_by_role("link", name="shown", exact=True).focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/jobs/{namespace}/shown")
        series = recorded_series(kubectl, namespace, "shown")
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
        back = page.get_by_role("link", name="shown", exact=True)
        sync_api.expect(back).to_have_attribute("href", f"/jobs/{namespace}/shown")
        page.screenshot(path=str(ARTIFACTS / "registry.png"), full_page=True)

        # The log tail reads pods/log through the API server, which asks the node's kubelet endpoint.
        back.click()
        page.wait_for_url(f"**/jobs/{namespace}/shown")
        sync_api.expect(page.locator("#log-lines")).to_contain_text('"train_log"', timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "job-log.png"), full_page=True)
        browser.close()
