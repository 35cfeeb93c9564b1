"""A dbt project that is not the demo (tests/dbt_projects/shop: its own project and profile names, seeds, views
over ref(), a view over a view, an ephemeral model, a warn-severity test, an incremental model, a snapshot, a
versioned model, a local package, no profiles.yml) goes through the
bundle's Write, Audit and Publish code on the embedded warehouse: prepared by `wap dbt prepare`, built with the
bundle's profile, audited, swapped. After the swap its views read production, and production equals a plain
`dbt build` of the same project.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.shop_support import RELATIONS, SHOP, copy_shop, load_batch
from tests.shop_support import relation_rows as rows
from wap.audit.dialect import DIALECTS
from wap.audit.stage import run_audit
from wap.audit.swap_safety import views_naming
from wap.config import WapConfig, load_config
from wap.dbt.prepare import prepare, profiles_dir, run_dbt
from wap.dbt.profiles import write_profiles
from wap.dbt.project import read_project
from wap.publish.duckdb import DuckDBPublisher
from wap.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.integration

RUN_ID = "manual__2026-12-01T00:00:00"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> WapConfig:
    folder = tmp_path_factory.mktemp("own-project")
    load_batch(folder / "warehouse.duckdb", 1)
    return load_config({"WAP_DBT_PROJECT_DIR": str(SHOP), "WAP_DUCKDB_PATH": str(folder / "warehouse.duckdb")})


@pytest.fixture(scope="module")
def built(config: WapConfig) -> dict:
    """`wap dbt prepare`, then the Write stage's dbt build into the write schema, then the audit."""
    prepared = prepare(config)
    output = run_dbt(config, prepared, "build", profiles=profiles_dir(config))
    return {"prepared": prepared, "output": output, "report": run_audit(config, run_id=RUN_ID)}


def view_sql(path: Path, schema: str) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        found = conn.execute(
            "select view_name, sql from duckdb_views() where schema_name = ? and not internal", [schema]
        ).fetchall()
    return dict(found)


def test_the_project_keeps_its_own_names_and_is_not_changed(config: WapConfig, built: dict) -> None:
    prepared = built["prepared"]
    assert (prepared.name, prepared.profile) == ("shop", "shop_warehouse")
    assert prepared.path != SHOP and prepared.manifest_path.is_file()
    assert not (SHOP / "profiles.yml").exists() and not (SHOP / "target").exists(), "the project is left as it was"
    assert "Warning in test accepted_values_stg_customers_customer_name" in built["output"]


def test_views_name_their_neighbours_relatively(config: WapConfig, built: dict) -> None:
    views = view_sql(config.duckdb_path, "develop_dwh")
    assert set(views) == {"stg_customers", "stg_orders", "stg_large_orders"}
    for name, sql in views.items():
        body = sql.split(" AS ", 1)[1]
        assert "develop_dwh" not in body.lower() and "warehouse" not in body.lower(), f"{name}: {sql}"
    assert "FROM stg_orders WHERE" in views["stg_large_orders"]  # DuckDB stores the view's SQL normalised
    with duckdb.connect(str(config.duckdb_path), read_only=True) as conn:
        query = lambda sql, params: conn.execute(sql, list(params)).fetchall()  # noqa: E731
        assert views_naming(query, DIALECTS["duckdb"], "develop_dwh") == []


def test_the_report_counts_the_warned_test_and_has_every_relation(built: dict) -> None:
    report = built["report"]
    assert {entry["name"] for entry in report["relations"]} == set(RELATIONS)  # not the ephemeral model
    assert all(entry["status"] == "added" for entry in report["relations"])  # an empty production
    assert report["swap_safety"] == []


def test_after_the_publish_production_equals_a_plain_build_and_its_views_read_production(
    config: WapConfig, built: dict
) -> None:
    report = built["report"]
    result = DuckDBPublisher(DuckDBWarehouse(config)).publish(run_id=RUN_ID, review_id=report["review_id"])
    assert result.outcome == "published" and set(result.relations) == set(RELATIONS)

    # A plain `dbt build` of the project itself (no bundle macros) into a schema of its own.
    work = config.duckdb_path.parent
    project = read_project(copy_shop(work / "plain"))
    plain = write_profiles(config, project, work / "plain-profiles", schema="plain").parent
    run_dbt(config, project, "deps", profiles=plain)
    run_dbt(config, project, "build", profiles=plain)
    for name in RELATIONS:
        assert rows(config.duckdb_path, "dwh", name) == rows(config.duckdb_path, "plain", name), name

    # The views read production: without the write schema (which now holds the previous production, empty
    # here), they still answer, and a change to production's table shows through them.
    with duckdb.connect(str(config.duckdb_path)) as conn:
        conn.execute("drop schema develop_dwh cascade")
        conn.execute("insert into dwh.raw_orders values (15, 4, '2024-04-01', 999)")
        large = conn.execute("select order_id from dwh.stg_large_orders order by 1").fetchall()
    assert large == [(10,), (13,), (15,)]
