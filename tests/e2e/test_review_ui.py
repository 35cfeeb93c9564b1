"""The review view in a real browser (issue 6): Slack link -> login -> the view in Airflow's nav -> Approve.

Debian's chromium, driven by Playwright, against the four real Airflow components on 127.0.0.1 with the simple
auth manager (users ``reviewer``, role op, and ``viewer``). The test follows a reviewer:

1. ``wap_dwh`` builds, audits and waits; the Slack alert (the outbox) links to the review page.
2. Anonymous, the review's data is refused (401); the Slack link in a fresh browser goes through Airflow's login
   and lands on the review page.
3. From Airflow's home page, the "WAP reviews" nav entry shows the list (framed by Airflow's UI); the run's
   review page there has the chart of rows per period, where 2022 exists only in the new build.
4. Approve: the page shows the decision, the approval task proceeds with ``decided_by`` = reviewer, the run's
   note says who approved, ``publish`` runs, and production is exactly the build that was reviewed.

Screenshots of the review page before and after the decision are saved under ``WAP_TEST_ARTIFACTS``
(default ``.wap/test-artifacts``).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from .harness import PROJECT_DIR, AirflowCluster, schema_fingerprint

pytestmark = pytest.mark.integration

DAG_ID = "wap_dwh"
VARIABLE = "wap_approval__wap_dwh"
PASSWORDS = {"reviewer": "reviewer-password", "viewer": "viewer-password"}
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium keeps dialling Google on this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BUILD_TIMEOUT = 420
DECISION_TIMEOUT = 120
ARTIFACTS = Path(os.environ.get("WAP_TEST_ARTIFACTS", PROJECT_DIR / ".wap" / "test-artifacts"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCluster]:
    """The four components with the simple auth manager's users and known passwords."""
    home = tmp_path_factory.mktemp("airflow-review-ui")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS), encoding="utf-8")
    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "reviewer:op,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    with AirflowCluster(home=home, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _anonymous_status(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _log_in(page, username: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("button[type=submit]")


def test_reviewer_approves_in_the_airflow_ui(cluster: AirflowCluster, browser) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run_id = cluster.trigger(DAG_ID)
    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "deferred", BUILD_TIMEOUT)
    review_id = cluster.xcom(DAG_ID, run_id, "audit")["review_id"]
    build = schema_fingerprint(cluster.duckdb_path, "develop_dwh", skip_prefix="_wap_")  # no task runs now
    page_url = f"{cluster.base_url}/wap/reviews/{DAG_ID}/{quote(run_id, safe='')}"

    # 1. The Slack alert links straight to the review page.
    alert = cluster.wait_for(
        lambda: next((m for m in cluster.outbox() if f"WAP review {review_id} is open" in m["text"]), None),
        timeout=30,
        what="the review-opened alert in the Slack outbox",
    )
    assert page_url in json.dumps(alert), alert

    # 2. No data without a user; the Slack link goes through the login and comes back.
    assert _anonymous_status(f"{cluster.base_url}/wap/api/reviews/{DAG_ID}/{quote(run_id, safe='')}") == 401
    assert _anonymous_status(f"{cluster.base_url}/wap/reviews") == 401
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(page_url)
    page.wait_for_url("**/auth/login**")
    _log_in(page, "reviewer")
    page.wait_for_url(page_url, timeout=30_000)
    assert page.locator("#review-state").inner_text() == "pending"

    # 3. The view in Airflow's nav: the list, then this review, framed by Airflow's UI.
    page.goto(cluster.base_url + "/")
    page.get_by_role("link", name="WAP reviews").click()
    page.wait_for_url("**/plugin/wap-reviews")
    view = page.frame_locator("iframe")
    row = view.locator(f"tr[data-run-id='{run_id}']")
    assert review_id in row.inner_text(timeout=30_000)
    assert "pending" in row.inner_text()
    row.get_by_role("link", name=run_id).click()
    chart = view.locator("svg.chart").first
    chart.wait_for(state="visible", timeout=30_000)
    assert chart.bounding_box()["height"] > 100
    new_year = view.locator("svg.chart rect.bar.after[data-period='2022']")
    assert new_year.count() == 1 and int(new_year.get_attribute("data-rows")) > 0
    assert view.locator("svg.chart rect.bar.before[data-period='2022']").count() == 0  # production ends in 2021
    assert f"airflow variables set {VARIABLE} 'approve {review_id}'" in view.locator("#instruction").inner_text()
    page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)

    # 4. Approve in the page: the decision shows, the run proceeds, production gets exactly the reviewed build.
    view.locator("#approve").click()
    flash = view.locator("#flash")
    flash.wait_for(state="visible", timeout=30_000)
    assert f"approve {review_id}" in flash.inner_text()
    assert "reviewer (approve, via the WAP review page" in view.locator("#decided-by").inner_text()
    assert cluster.variable_get(VARIABLE) == f"approve {review_id}"

    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "success", DECISION_TIMEOUT)
    decision = cluster.xcom(DAG_ID, run_id, "await_approval", key="decision")
    assert decision["decision"] == "approve" and decision["decided_by"] == "reviewer", decision
    assert cluster.wait_for_run(DAG_ID, run_id, BUILD_TIMEOUT) == "success"
    assert cluster.task_state(DAG_ID, run_id, "publish") == "success"
    note = cluster._query_one(
        "select content from dag_run_note join dag_run on dag_run.id = dag_run_note.dag_run_id "
        "where dag_run.dag_id = ? and dag_run.run_id = ?",
        (DAG_ID, run_id),
    )
    assert note and re.search(rf"WAP review {review_id}: approve by reviewer via the WAP review page", note[0]), note
    assert schema_fingerprint(cluster.duckdb_path, "dwh", skip_prefix="_wap_") == build

    page.reload()
    view.locator("#review-state").wait_for(timeout=30_000)
    assert view.locator("#review-state").inner_text() == "published"
    assert view.locator("#approve").count() == 0
    page.screenshot(path=str(ARTIFACTS / "review-published.png"), full_page=True)
    context.close()
