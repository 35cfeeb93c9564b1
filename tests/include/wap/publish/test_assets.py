"""The Assets a publish and a rollback announce: their names on both warehouses, which relations, the events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.execution_time.context import OutletEventAccessors

from wap.config import ConfigError, load_config
from wap.publish import assets

SNOWFLAKE = {"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": "analytics", "WAP_PROD_SCHEMA": "dwh"}
REPORT = {
    "relations": [
        {"name": "orders", "status": "changed"},
        {"name": "customers", "status": "unchanged"},
        {"name": "payments", "status": "added"},
        {"name": "legacy", "status": "removed"},
    ]
}


# -- names ----------------------------------------------------------------------------------------------------
def test_a_duckdb_relation_is_named_by_its_file_schema_and_table(tmp_path: Path) -> None:
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "wh.duckdb")})
    uri = assets.relation_uri(config, "Sysselsetting_Forholdstall")
    assert uri == f"duckdb:{tmp_path.resolve()}/wh.duckdb/dwh/sysselsetting_forholdstall"
    # Airflow's normalization leaves it as it is: its default name and its URI are one string.
    asset = assets.relation_asset(config, "sysselsetting_forholdstall")
    assert asset == Asset(uri=uri) and asset.name == asset.uri == uri
    # The spelling with an empty host (OpenLineage's namespace) normalizes to the same URI under another name:
    # another Asset, whose URI clashes with this one's (the README says to name it with relation_asset).
    other = Asset(uri=f"duckdb://{tmp_path.resolve()}/wh.duckdb/dwh/sysselsetting_forholdstall")
    assert other.uri == uri and other.name != uri


def test_a_duckdb_path_with_a_space_is_quoted() -> None:
    assert assets.duckdb_uri("/data/my files/wh.duckdb", "DWH", "t") == "duckdb:/data/my%20files/wh.duckdb/dwh/t"


def test_a_snowflake_relation_is_named_as_the_provider_and_openlineage_name_it() -> None:
    from airflow.providers.snowflake.assets.snowflake import convert_asset_to_openlineage, create_asset

    config = load_config({**SNOWFLAKE, "WAP_SNOWFLAKE_ACCOUNT": "myorg-myaccount"})
    uri = assets.relation_uri(config, "orders")
    assert uri == "snowflake://myorg-myaccount/ANALYTICS/DWH/ORDERS"
    asset = assets.relation_asset(config, "orders")  # the provider's URI handler validates it
    assert asset == create_asset(account="myorg-myaccount", database="ANALYTICS", schema="DWH", table="ORDERS")
    dataset = convert_asset_to_openlineage(asset, None)
    assert (dataset.namespace, dataset.name) == ("snowflake://myorg-myaccount", "ANALYTICS.DWH.ORDERS")


@pytest.mark.parametrize(
    ("account", "relation", "uri"),
    [
        ("xy12345", "orders", "snowflake://xy12345.us-west-1.aws/ANALYTICS/DWH/ORDERS"),  # OpenLineage's spelling
        ("xy12345.eu-west-1.aws", "ORDERS", "snowflake://xy12345.eu-west-1.aws/ANALYTICS/DWH/ORDERS"),
        ("myorg-myaccount", "MixedCase", "snowflake://myorg-myaccount/ANALYTICS/DWH/MixedCase"),  # a quoted name
    ],
)
def test_snowflake_accounts_and_names(account: str, relation: str, uri: str) -> None:
    assert assets.relation_uri(load_config(SNOWFLAKE), relation, account=account) == uri


def test_a_snowflake_asset_without_an_account_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="WAP_SNOWFLAKE_ACCOUNT is not set"):
        assets.relation_asset(load_config(SNOWFLAKE), "orders")


def test_the_account_setting_must_be_the_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "connection_account", lambda config: "myorg-other")
    with pytest.raises(ConfigError, match="WAP_SNOWFLAKE_ACCOUNT='myorg-myaccount' is not the account of the"):
        assets.check_account(load_config({**SNOWFLAKE, "WAP_SNOWFLAKE_ACCOUNT": "myorg-myaccount"}))
    monkeypatch.setattr(assets, "connection_account", lambda config: "MYORG-MYACCOUNT")
    assets.check_account(load_config({**SNOWFLAKE, "WAP_SNOWFLAKE_ACCOUNT": "myorg-myaccount"}))
    assets.check_account(load_config(SNOWFLAKE))  # unset: the connection's account is used, nothing to compare


# -- which relations --------------------------------------------------------------------------------------------
def test_changed_and_added_relations_are_announced_unchanged_ones_only_by_the_setting(tmp_path: Path) -> None:
    env = {"WAP_DUCKDB_PATH": str(tmp_path / "wh.duckdb")}
    statuses = assets.statuses_of_report(REPORT)
    assert statuses == [("orders", "changed"), ("customers", "unchanged"), ("payments", "added")]  # removed: gone
    default = assets.announcements(load_config(env), statuses)
    assert [(a.relation, a.status) for a in default] == [("orders", "changed"), ("payments", "added")]
    assert default[0].uri == assets.relation_uri(load_config(env), "orders")
    every = assets.announcements(load_config({**env, "WAP_ANNOUNCE_UNCHANGED": "yes"}), statuses)
    assert [a.relation for a in every] == ["orders", "customers", "payments"]


def test_a_rollback_compares_what_goes_back_with_what_it_withdraws() -> None:
    incoming = {"a": (3, "h1"), "b": (2, "h2"), "c": (1, "h3")}
    outgoing = {"a": (3, "h1"), "b": (2, "other"), "d": (9, "h4")}
    assert assets.statuses_between(incoming, outgoing, {"a": "A", "b": "B"}) == [
        ("A", "unchanged"),
        ("B", "changed"),
        ("c", "added"),
    ]


# -- the events ------------------------------------------------------------------------------------------------
def _events(outlet_events: OutletEventAccessors, dag_id: str = "wap_dwh") -> list[tuple[str, dict[str, Any]]]:
    accessor = outlet_events[assets.published_alias(dag_id)]
    return [(event.dest_asset_key.uri, event.extra) for event in accessor.asset_alias_events]


def test_announce_adds_one_event_per_relation_through_the_alias(tmp_path: Path) -> None:
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "wh.duckdb")})
    outlet_events = OutletEventAccessors()
    chosen = assets.announcements(config, assets.statuses_of_report(REPORT))
    announced = assets.announce(
        outlet_events, "wap_dwh", chosen, {"action": "publish", "run_id": "r", "review_id": "x"}
    )
    orders, payments = (assets.relation_uri(config, name) for name in ("orders", "payments"))
    extra = {"action": "publish", "run_id": "r", "review_id": "x"}
    assert _events(outlet_events) == [
        (orders, {**extra, "relation": "orders", "status": "changed"}),
        (payments, {**extra, "relation": "payments", "status": "added"}),
    ]
    assert [item["uri"] for item in announced] == [orders, payments]
    assert assets.published_alias("wap_dwh").name == "wap_dwh__published"


@dataclass
class _Event:
    source_dag_id: str
    source_run_id: str


class _InletEvents:
    """The task's ``inlet_events`` for the alias: the events since ``after``."""

    def __init__(self, events: list[_Event]) -> None:
        self.events, self.asked = events, []

    def __getitem__(self, alias: Any) -> _InletEvents:
        assert alias == assets.published_alias("wap_dwh")
        return self

    def after(self, since: Any) -> list[_Event]:
        self.asked.append(since)
        return self.events


@dataclass
class _DagRun:
    dag_id: str = "wap_dwh"
    run_id: str = "manual__1"
    run_after: datetime = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("swapped", "earlier", "announced"),
    [
        (True, [], 2),  # the try that swapped
        (False, [_Event("wap_dwh", "manual__1")], 0),  # a retry (or a Clear) after a try that swapped and announced
        (False, [_Event("wap_dwh", "manual__0"), _Event("other", "manual__1")], 2),  # that try was killed first
    ],
)
def test_a_publish_is_announced_once_whichever_try_announces_it(
    tmp_path: Path, swapped: bool, earlier: list[_Event], announced: int
) -> None:
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "wh.duckdb")})
    outlet_events, inlet_events = OutletEventAccessors(), _InletEvents(earlier)
    result = assets.announce_publish(
        config,
        outlet_events=outlet_events,
        inlet_events=inlet_events,
        dag_run=_DagRun(),
        review_id="0123456789ab",
        report=REPORT,
        swapped=swapped,
    )
    assert len(result) == len(_events(outlet_events)) == announced
    assert inlet_events.asked == ([] if swapped else [_DagRun().run_after])
    assert all(
        extra["review_id"] == "0123456789ab" and extra["run_id"] == "manual__1" for _, extra in _events(outlet_events)
    )
