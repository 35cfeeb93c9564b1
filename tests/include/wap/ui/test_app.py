"""The review view's API on Airflow's own app: authentication, the rendered report, and the decision rules.

The app under test is Airflow's API server app (``create_app("core")``) with this project's plugin mounted at
``/wap`` and the simple auth manager, on a migrated throw-away metadata database. Which runs exist is stubbed
(``get_review``/``list_reviews``); the Variable writes are real. The browser test in tests/e2e reads real runs.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from wap.approval import reviews
from wap.approval.reviews import Review
from wap.audit.report import build_report, headline, review_id
from wap.ui import app as ui_app

BIN = Path(sys.executable).parent
RUN_ID = "manual__2026-11-23T10:00:00+00:00"
OLD_RUN_ID = "manual__2026-11-22T10:00:00+00:00"
VARIABLE = "wap_approval__wap_dwh"
SIMPLE_AUTH = "airflow.api_fastapi.auth.managers.simple"
REVIEW_URL = "/wap/reviews/wap_dwh/manual__2026-11-23T10%3A00%3A00%2B00%3A00"


def _relation() -> dict:
    return {
        "name": "sysselsetting_forholdstall",
        "kind": "table",
        "kind_before": "table",
        "status": "changed",
        "diff_method": "key",
        "key": ["tid"],
        "duplicate_keys": False,
        "columns": {
            "added": [],
            "removed": [],
            "type_changed": [{"name": "andel", "before": "INT", "after": "DOUBLE"}],
        },
        "rows": {"before": 2400, "after": 2880, "added": 480, "removed": 0, "changed": 12},
        "column_changes": {"andel": 12, "tid": 0},
        "samples": {
            "added": [{"tid": "2022-01-01", "region": "Tromsø <script>alert(1)</script>", "andel": 0.5}],
            "removed": [],
            "changed": [{"before": {"tid": "2021-12-01", "andel": 1}, "after": {"tid": "2021-12-01", "andel": 1.5}}],
        },
        "periods": [
            {
                "column": "periode_start",
                "grain": "year",
                "before": {"min": "2019-01-01", "max": "2021-12-01"},
                "after": {"min": "2019-01-01", "max": "2022-12-01"},
                "counts": [
                    {"period": "2020", "before": 1200, "after": 1200},
                    {"period": "2021", "before": 1200, "after": 1200},
                    {"period": "2022", "before": 0, "after": 480},
                ],
            }
        ],
        "content_hash_after": "123",
    }


def _review(run_id: str = RUN_ID, state: str = "pending") -> Review:
    report = build_report(
        dag_id="wap_dwh",
        run_id=run_id,
        warehouse="duckdb",
        write_schema="develop_dwh",
        prod_schema="dwh",
        relations=[_relation()],
        dbt_tests=[{"model": "sysselsetting_forholdstall", "passed": 3, "failed": 0, "warned": 1}],
        swap_safety=[{"check": "view_names_write_schema", "severity": "warn", "relation": "v", "message": "a warning"}],
    )
    report["review_id"] = review_id(run_id, report)
    return Review("wap_dwh", run_id, "running", report["review_id"], state, None, report, None)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Airflow's API app with the plugin, users ``reviewer`` (op) and ``viewer`` (viewer), a migrated database."""
    from fastapi.testclient import TestClient

    monkey = pytest.MonkeyPatch()
    monkey.setenv("AIRFLOW__CORE__AUTH_MANAGER", f"{SIMPLE_AUTH}.simple_auth_manager.SimpleAuthManager")
    monkey.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "reviewer:op,viewer:viewer")
    monkey.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkey.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "test-secret-for-the-review-view-" + "0" * 40)
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, capture_output=True, timeout=300)
    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    with TestClient(create_app("core"), base_url="http://127.0.0.1:8080") as test_client:
        yield test_client
    purge_cached_app()
    monkey.undo()


def _token(username: str, role: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))


class Browser:
    """Requests of one signed-in user: Airflow's ``_token`` cookie on each request."""

    def __init__(self, client, username: str, role: str) -> None:
        self.client, self.cookie = client, f"_token={_token(username, role)}"

    def get(self, url: str, **kwargs):
        return self.client.get(url, headers={"cookie": self.cookie, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, url: str, **kwargs):
        return self.client.post(url, headers={"cookie": self.cookie, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture
def as_reviewer(client) -> Browser:
    return Browser(client, "reviewer", "op")


@pytest.fixture
def as_viewer(client) -> Browser:
    return Browser(client, "viewer", "viewer")


@pytest.fixture
def runs(monkeypatch):
    """Two runs: the open review (newest) and an older, rejected one."""
    current, old = _review(), _review(OLD_RUN_ID, state="rejected")
    by_run = {RUN_ID: current, OLD_RUN_ID: old}
    monkeypatch.setattr(ui_app, "list_reviews", lambda dag_id, session: [current, old])
    monkeypatch.setattr(ui_app, "get_review", lambda dag_id, run_id, session: by_run.get(run_id))
    monkeypatch.setattr(reviews, "open_review", lambda dag_id, session: current)
    return current, old


def _form_token(page: str) -> str:
    return page.split('name="token" value="', 1)[1].split('"', 1)[0]


def _variable(key: str) -> str | None:
    from airflow.models.variable import Variable

    return Variable.get(key, default_var=None)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/wap/"),
        ("GET", "/wap/reviews"),
        ("GET", REVIEW_URL),
        ("GET", f"/wap/api/reviews/wap_dwh/{RUN_ID}"),
        ("GET", "/wap/icon.svg"),
        ("POST", f"{REVIEW_URL}/decision"),
    ],
)
def test_anonymous_gets_401_and_no_data(client, runs, method, path) -> None:
    response = client.request(method, path, data={"verb": "approve", "review_id": runs[0].review_id})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert runs[0].review_id not in response.text


def test_anonymous_browser_is_sent_to_login_and_back(client, runs) -> None:
    response = client.get(REVIEW_URL, headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/auth/login"
    assert parse_qs(location.query)["next"] == [REVIEW_URL]


def test_a_forged_or_expired_token_is_refused(client, runs) -> None:
    assert client.get("/wap/reviews", headers={"cookie": "_token=not-a-jwt"}).status_code in (401, 403)


def test_review_list(as_viewer, runs) -> None:
    page = as_viewer.get("/wap/reviews").text
    current, old = runs
    assert page.index(current.review_id) < page.index(old.review_id)
    assert '<span class="badge amber">pending</span>' in page
    assert '<span class="badge red">rejected</span>' in page
    assert "+480" in page and "2,400" in page and "2,880" in page


def test_review_page_renders_the_report(as_viewer, runs) -> None:
    response = as_viewer.get(REVIEW_URL)
    assert response.status_code == 200
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    page = response.text
    current = runs[0]
    for expected in (
        f"Review <code>{current.review_id}</code>",
        "sysselsetting_forholdstall",
        "type INT → DOUBLE",  # schema change
        '<td class="num">12</td>',  # andel: values changed
        "Tromsø &lt;script&gt;alert(1)&lt;/script&gt;",  # samples, escaped
        "a warning",  # swap safety
        '<td class="num warn">1</td>',  # dbt: warned
        f"airflow variables set {VARIABLE} 'approve {current.review_id}'",  # the exact instruction
        "2019-01-01 … 2021-12-01",  # period range before
        headline(current.report),  # the report's one line, as Markdown and Slack give it
    ):
        assert expected in page, expected
    assert "<script>" not in page
    # The chart: an inline SVG with a 2022 bar only for the new build.
    assert '<svg class="chart"' in page
    assert 'class="bar after" ' in page and 'data-period="2022" data-rows="480"' in page
    assert page.count('data-period="2022"') == 1


def test_review_json(as_viewer, runs) -> None:
    body = as_viewer.get(f"/wap/api/reviews/wap_dwh/{RUN_ID}").json()
    assert body["review_id"] == runs[0].review_id
    assert body["state"] == "pending"
    assert body["report"]["schema_version"] == 1


def test_unknown_run_and_other_dags_are_404(as_viewer, runs) -> None:
    assert as_viewer.get("/wap/reviews/wap_dwh/nope").status_code == 404
    assert as_viewer.get(f"/wap/reviews/other_dag/{RUN_ID}").status_code == 404


def test_viewer_sees_no_buttons_and_cannot_decide(as_viewer, as_reviewer, runs) -> None:
    reviewer_page = as_reviewer.get(REVIEW_URL).text
    token = _form_token(reviewer_page)
    page = as_viewer.get(REVIEW_URL).text
    assert 'id="approve"' not in page
    assert "viewer may not edit Variables" in page
    before = _variable(VARIABLE)
    response = as_viewer.post(
        f"{REVIEW_URL}/decision", data={"verb": "approve", "review_id": runs[0].review_id, "token": token}
    )
    assert response.status_code == 403
    assert "viewer may not edit the Variable wap_approval__wap_dwh" in response.json()["detail"]
    assert _variable(VARIABLE) == before


def test_reviewer_approves_the_open_review(as_reviewer, runs) -> None:
    current = runs[0]
    page = as_reviewer.get(REVIEW_URL).text
    assert 'id="approve"' in page
    response = as_reviewer.post(
        f"{REVIEW_URL}/decision",
        data={"verb": "approve", "review_id": current.review_id, "token": _form_token(page)},
        headers={"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8080"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{REVIEW_URL}?decided=approve"
    assert _variable(VARIABLE) == f"approve {current.review_id}"
    assert '"user": "reviewer"' in _variable(f"{VARIABLE}__by")
    assert "the WAP review page" in _variable(f"{VARIABLE}__by")
    shown = as_reviewer.get(response.headers["location"]).text
    assert f"<code>approve {current.review_id}</code>" in shown
    assert "reviewer (approve, via the WAP review page" in shown


def test_a_stale_page_cannot_decide_a_newer_review(as_reviewer, runs, monkeypatch) -> None:
    """The page of the older review posts its own id: refused, the Variable is untouched."""
    current, old = runs
    monkeypatch.setattr(ui_app, "get_review", lambda dag_id, run_id, session: _review(run_id, state="pending"))
    old_url = "/wap/reviews/wap_dwh/manual__2026-11-22T10%3A00%3A00%2B00%3A00"
    stale_page = as_reviewer.get(old_url).text  # rendered while that review was still open
    runs_now = {RUN_ID: current, OLD_RUN_ID: old}
    monkeypatch.setattr(ui_app, "get_review", lambda dag_id, run_id, session: runs_now[run_id])
    before = _variable(VARIABLE)
    response = as_reviewer.post(
        f"{old_url}/decision", data={"verb": "approve", "review_id": old.review_id, "token": _form_token(stale_page)}
    )
    assert response.status_code == 409
    assert f"review {old.review_id} is not the open review of wap_dwh" in response.json()["detail"]
    assert _variable(VARIABLE) == before


def test_a_review_id_not_of_this_run_is_refused(as_reviewer, runs) -> None:
    old = runs[1]
    page = as_reviewer.get(REVIEW_URL).text
    response = as_reviewer.post(
        f"{REVIEW_URL}/decision", data={"verb": "approve", "review_id": old.review_id, "token": _form_token(page)}
    )
    assert response.status_code == 403  # the form token binds the page's review id


def test_forged_form_token_and_cross_site_posts_are_refused(as_reviewer, runs) -> None:
    current = runs[0]
    before = _variable(VARIABLE)
    forged = as_reviewer.post(
        f"{REVIEW_URL}/decision", data={"verb": "reject", "review_id": current.review_id, "token": "0" * 64}
    )
    assert forged.status_code == 403 and "token does not match" in forged.json()["detail"]
    page = as_reviewer.get(REVIEW_URL).text
    cross_site = as_reviewer.post(
        f"{REVIEW_URL}/decision",
        data={"verb": "reject", "review_id": current.review_id, "token": _form_token(page)},
        headers={"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403 and "Cross-site request refused" in cross_site.json()["detail"]
    assert _variable(VARIABLE) == before


def test_plugin_is_in_the_nav(as_viewer) -> None:
    plugins = as_viewer.client.get("/api/v2/plugins", headers={"authorization": f"Bearer {_token('viewer', 'viewer')}"})
    assert plugins.status_code == 200, plugins.text
    (plugin,) = [p for p in plugins.json()["plugins"] if p["name"] == "wap_reviews"]
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/wap"
    assert plugin["external_views"][0]["destination"] == "nav"


# -- the review policy -------------------------------------------------------------------------------------------
REMOVED_RULE = "rows_removed <= 0 (*)"
RANGE_RULE = "rows added in the range of the last 5 published cycles (±10%)"
RELATION = "sysselsetting_forholdstall"


def _verdict(publish: bool) -> dict:
    rules = [
        {"rule": "no_removed_relations", "held": True, "detail": "no relation removed"},
        {
            "rule": REMOVED_RULE,
            "held": publish,
            "detail": "no rows removed" if publish else f"{RELATION}: 12 rows removed (limit 0)",
        },
        {"rule": RANGE_RULE, "held": True, "detail": f"{RELATION}: 480 rows added, in 430-530"},
    ]
    return {
        "publish": publish,
        "source": "dbt/wap_policy.yml",
        "rules": rules,
        "held": [rule["rule"] for rule in rules if rule["held"]],
        "failed": [rule["rule"] for rule in rules if not rule["held"]],
    }


def _policy_xcom(verdict: dict | None, *, cycles: int = 3) -> dict:
    """The audit's ``policy`` XCom as the review reads it back: the earlier cycles' times are the history's ISO
    text, this cycle's is the datetime the audit pushed, through the Task SDK's XCom serialization."""
    from airflow.models.xcom import XComModel
    from airflow.sdk.bases.xcom import BaseXCom

    earlier = [
        {
            "run_id": f"manual__2026-11-{day:02d}T10:00:00+00:00",
            "review_id": f"{day:012d}",
            "audited_at": f"2026-11-{day:02d}T10:00:05.123456",
            "outcome": "published",
            "decided_by": "alice" if day % 2 else "policy",
        }
        for day in range(10, 10 + cycles - 1)
    ]
    this = {
        "run_id": RUN_ID,
        "review_id": "0123456789ab",
        "audited_at": datetime(2026, 11, 23, 10, 0, 5, tzinfo=timezone.utc),
        "outcome": "open",
        "decided_by": None,
    }
    published = bool(verdict and verdict["publish"])
    figures = {
        "added": [470, 490, 480][-cycles:],
        "removed": [0, 0, 0 if published else 12][-cycles:],
        "changed": [3, None, 12][-cycles:],
        "after": [1440, 1930, 2880][-cycles:],
    }
    value = {
        "verdict": verdict,
        "policy_file": "dbt/wap_policy.yml",
        "history": {"cycles": [*earlier, this], "relations": {RELATION: figures}},
        "unusual": {} if published else {RELATION: ["12 rows removed, outside 0-0 of the last 2 published cycles"]},
    }
    stored = type("Row", (), {"value": BaseXCom.serialize_value(value)})
    return XComModel.deserialize_value(stored)


@pytest.fixture
def with_policy(monkeypatch, runs):
    """The open review of ``runs`` with the audit's ``policy`` XCom given (and its state)."""

    def review(policy: dict | None, state: str = "pending") -> Review:
        current = replace(runs[0], policy=policy, state=state)
        by_run = {RUN_ID: current, OLD_RUN_ID: runs[1]}
        monkeypatch.setattr(ui_app, "get_review", lambda dag_id, run_id, session: by_run.get(run_id))
        monkeypatch.setattr(ui_app, "list_reviews", lambda dag_id, session: [current, runs[1]])
        return current

    return review


def _section(page: str, start: str, end: str) -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


def test_a_review_the_policy_approved_says_published_by_policy_with_its_rules(as_viewer, with_policy) -> None:
    with_policy(_policy_xcom(_verdict(publish=True)), state="published")
    response = as_viewer.get(REVIEW_URL)
    assert response.status_code == 200, response.text
    page = response.text
    policy = _section(page, '<section class="panel" id="policy">', "</section>")
    assert (
        "<strong>Published by policy</strong>" in policy
        and "(<code>dbt/wap_policy.yml</code>): every rule held" in policy
    )
    assert "did not approve" not in policy and "failed" not in policy
    rules = _section(policy, '<table id="policy-rules">', "</table>")
    assert rules.count("<tr>") == 4  # the header and one row per rule
    assert '<td>rows_removed &lt;= 0 (*)</td><td class="status-added">held</td><td>no rows removed</td>' in rules
    assert f'<td>{RANGE_RULE}</td><td class="status-added">held</td>' in rules
    assert "<= 0" not in page  # the rule names are data: escaped
    assert page.count('<svg class="series"') == 1  # one relation, three cycles


def test_a_review_the_policy_did_not_approve_names_the_failed_rule_the_unusual_figures_and_the_series(
    as_viewer, with_policy
) -> None:
    with_policy(_policy_xcom(_verdict(publish=False)))
    response = as_viewer.get(REVIEW_URL)
    assert response.status_code == 200, response.text
    page = response.text
    policy = _section(page, '<section class="panel" id="policy">', "</section>")
    assert "The review policy (<code>dbt/wap_policy.yml</code>) did not approve this cycle: a person decides." in policy
    assert "Failed: rows_removed &lt;= 0 (*)." in policy
    assert "Published by policy" not in page
    assert (
        f'<td>rows_removed &lt;= 0 (*)</td><td class="block">failed</td><td>{RELATION}: 12 rows removed (limit 0)</td>'
    ) in policy
    assert f'<td>{RANGE_RULE}</td><td class="status-added">held</td>' in policy
    assert 'id="policy-error"' not in policy

    relations = _section(page, '<table id="relations">', "</table>")
    assert "last 2 cycles and this one" in relations
    assert relations.count('<svg class="series"') == 1  # one per relation of the report
    assert '<div class="warn unusual">12 rows removed, outside 0-0 of the last 2 published cycles</div>' in relations
    svg = "<svg" + _section(relations, "<svg", "</svg>") + "</svg>"
    assert svg.count("<polyline ") == 3
    assert "<title>this cycle: 12 rows removed</title>" in svg
    assert "2026-11-10T10:00 published: 470 added, 0 removed, 3 changed" in svg
    assert "this cycle: 480 added, 12 removed, 12 changed" in svg
    assert "This review is open." in page  # a person decides, as without a policy


def test_a_policy_that_could_not_decide_shows_its_error(as_viewer, with_policy) -> None:
    verdict = {
        "publish": False,
        "source": "dbt/wap_policy.yml",
        "rules": [],
        "held": [],
        "failed": [],
        "error": "rules.no_removed_relations: expected true or false, got <maybe>",
    }
    with_policy(_policy_xcom(verdict, cycles=1))
    page = as_viewer.get(REVIEW_URL).text
    assert (
        '<p class="block" id="policy-error">rules.no_removed_relations: expected true or false, got &lt;maybe&gt;</p>'
    ) in page
    assert 'id="policy-rules"' not in page
    assert '<svg class="series"' not in page and "cycles and this one" not in page  # no earlier cycle yet


def test_without_a_policy_file_the_section_says_every_cycle_waits(as_viewer, with_policy) -> None:
    with_policy(_policy_xcom(None, cycles=2))
    page = as_viewer.get(REVIEW_URL).text
    assert "No review policy (no file dbt/wap_policy.yml)" in page
    assert 'id="policy-rules"' not in page
    assert page.count('<svg class="series"') == 1  # the recent cycles are shown without a policy too


def test_a_review_without_a_policy_xcom_has_no_policy_section(as_viewer, with_policy) -> None:
    with_policy(None)
    page = as_viewer.get(REVIEW_URL).text
    assert "Review policy" not in page and 'id="policy"' not in page
    assert '<svg class="series"' not in page and "cycles and this one" not in page
    assert '<svg class="chart"' in page  # the rest of the page as before


def test_a_review_the_policy_approved_but_not_yet_published_says_approved(as_viewer, with_policy) -> None:
    with_policy(_policy_xcom(_verdict(publish=True)), state="approved")
    policy = _section(as_viewer.get(REVIEW_URL).text, '<section class="panel" id="policy">', "</section>")
    assert "<strong>Approved by policy</strong>" in policy and "Published by policy" not in policy
