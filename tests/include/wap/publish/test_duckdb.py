"""Publish on the embedded warehouse: guards that fail closed, an atomic swap, a retry that changes nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from wap.audit.dialect import DIALECTS
from wap.audit.marker import current_fingerprints, write_marker
from wap.config import load_config
from wap.publish.duckdb import DuckDBPublisher
from wap.publish.guards import PublishRefused
from wap.warehouse.duckdb import DuckDBWarehouse

RUN, REVIEW = "manual__2026-01-02", "0123456789ab"


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBPublisher:
    """develop_dwh holds an audited build of RUN (a table and two views); dwh holds the previous production (a
    table, a view of the same name and another definition, the same view ``same``, a table only it has)."""
    wh = DuckDBWarehouse(load_config({"WAP_DUCKDB_PATH": str(tmp_path / "w.duckdb")}))
    with wh.connect() as conn:
        conn.execute("create schema ssb; create table ssb.src as select range as id from range(5)")
        conn.execute("create schema develop_dwh; create schema dwh")
        conn.execute("create table develop_dwh.t as select range as id, 'new' as v from range(4)")
        conn.execute("create view develop_dwh.v as select id from ssb.src where id > 1")
        conn.execute("create view develop_dwh.same as select count(*) as n from ssb.src")
        conn.execute("create table dwh.t as select range as id, 'old' as v from range(3)")
        conn.execute("create view dwh.v as select id from ssb.src where id > 0")
        conn.execute("create view dwh.same as select count(*) as n from ssb.src")
        conn.execute("create table dwh.old_only as select 1 as x")
    audit(wh, RUN, REVIEW)
    with wh.session() as query:  # production was published by an earlier run, audited as such
        previous = current_fingerprints(query, DIALECTS["duckdb"], "dwh")
    with wh.connect() as conn:
        conn.execute(
            "create table dwh._wap_marker as select 'manual__2025' as run_id, 'aaaaaaaaaaaa' as review_id, "
            "'*' as relation, null::bigint as row_count, null::varchar as content_hash"
        )
        for name, (count, digest) in previous.items():
            conn.execute(
                "insert into dwh._wap_marker values ('manual__2025', 'aaaaaaaaaaaa', ?, ?, ?)", [name, count, digest]
            )
    return DuckDBPublisher(wh)


def audit(wh: DuckDBWarehouse, run_id: str, review_id: str) -> None:
    with wh.session() as query:
        fingerprints = current_fingerprints(query, DIALECTS["duckdb"], "develop_dwh")
    write_marker(
        wh,
        run_id=run_id,
        review_id=review_id,
        fingerprints=[("*", None, None)] + [(n, c, h) for n, (c, h) in fingerprints.items()],
    )


def snapshot(wh: DuckDBPublisher) -> dict[str, list]:
    """Every relation of both schemas with its rows, sorted: the content, not just the counts."""
    with duckdb.connect(str(wh.config.duckdb_path), read_only=True) as conn:
        names = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('dwh', 'develop_dwh', '_wap_swap') order by 1, 2"
        ).fetchall()
        return {f"{s}.{n}": sorted(map(repr, conn.execute(f'select * from "{s}"."{n}"').fetchall())) for s, n in names}


def test_publish_swaps_the_schemas(warehouse: DuckDBPublisher) -> None:
    before = snapshot(warehouse)
    result = warehouse.publish(run_id=RUN, review_id=REVIEW)
    assert result.outcome == "published" and result.previous_run_id == "manual__2025"
    assert result.relations == ["same", "t", "v"]
    after = snapshot(warehouse)
    assert after["dwh.t"] == before["develop_dwh.t"] and after["dwh.v"] == before["develop_dwh.v"]
    assert after["develop_dwh.t"] == before["dwh.t"] and after["develop_dwh.old_only"] == before["dwh.old_only"]
    assert after["dwh._wap_marker"] == before["develop_dwh._wap_marker"]
    assert after["develop_dwh._wap_marker"] == before["dwh._wap_marker"]
    assert "dwh.old_only" not in after and not any(name.startswith("_wap_swap") for name in after)


def test_a_retry_after_success_is_a_no_op(warehouse: DuckDBPublisher) -> None:
    warehouse.publish(run_id=RUN, review_id=REVIEW)
    published = snapshot(warehouse)
    again = warehouse.publish(run_id=RUN, review_id=REVIEW)
    assert again.outcome == "already published"
    assert snapshot(warehouse) == published  # a second swap would have undone the publish


def test_first_publish_without_a_production_schema(warehouse: DuckDBPublisher) -> None:
    with warehouse.warehouse.connect() as conn:
        conn.execute("drop schema dwh cascade")
    before = snapshot(warehouse)
    result = warehouse.publish(run_id=RUN, review_id=REVIEW)
    assert result.outcome == "published" and result.previous_run_id is None
    after = snapshot(warehouse)
    assert after["dwh.t"] == before["develop_dwh.t"]
    assert [name for name in after if name.startswith("develop_dwh.")] == []


@pytest.mark.parametrize(
    ("edit", "run_id", "review_id", "message"),
    [
        ("", RUN, "ba9876543210", "audited as review 0123456789ab, but review ba9876543210 was approved"),
        ("", "manual__other", REVIEW, "holds the build of run manual__2026-01-02, not of this run manual__other"),
        ("insert into develop_dwh.t values (9, 'late')", RUN, REVIEW, "t has 5 rows, audited 4"),
        ("update develop_dwh.t set v = 'edited' where id = 1", RUN, REVIEW, "t's content differs"),
        ("create table develop_dwh.extra as select 1 as x", RUN, REVIEW, "extra is new"),
        ("drop view develop_dwh.v", RUN, REVIEW, "v is gone"),
        ("drop table develop_dwh._wap_marker", RUN, REVIEW, "has no audit marker"),
        (
            "insert into develop_dwh._wap_marker (run_id, review_id, relation) values ('x', 'y', 'z')",
            RUN,
            REVIEW,
            "names several runs",
        ),
    ],
)
def test_guards_fail_closed(warehouse: DuckDBPublisher, edit, run_id, review_id, message) -> None:
    if edit:
        with warehouse.warehouse.connect() as conn:
            conn.execute(edit)
    before = snapshot(warehouse)
    with pytest.raises(PublishRefused, match=message.replace("(", r"\(")):
        warehouse.publish(run_id=run_id, review_id=review_id)
    assert snapshot(warehouse) == before


def test_a_view_naming_the_write_schema_is_blocked(warehouse: DuckDBPublisher) -> None:
    with warehouse.warehouse.connect() as conn:
        conn.execute("create or replace view develop_dwh.v as select id from develop_dwh.t")
    audit(warehouse.warehouse, RUN, REVIEW)
    before = snapshot(warehouse)
    with pytest.raises(PublishRefused, match=r"views in develop_dwh name develop_dwh \(v\)"):
        warehouse.publish(run_id=RUN, review_id=REVIEW)
    assert snapshot(warehouse) == before


def test_a_failure_at_any_step_leaves_both_schemas_exactly_as_they_were(warehouse: DuckDBPublisher) -> None:
    steps: list[str] = []
    before = snapshot(warehouse)
    # Learn the steps on a copy of the file, then fail at each one in turn on the original.
    copy = warehouse.config.duckdb_path.with_name("copy.duckdb")
    copy.write_bytes(warehouse.config.duckdb_path.read_bytes())
    probe = DuckDBPublisher(DuckDBWarehouse(load_config({"WAP_DUCKDB_PATH": str(copy)})))
    probe.publish(run_id=RUN, review_id=REVIEW, fault=steps.append)
    assert len(steps) >= 6 and steps[-1] == "done"

    for step in steps:

        def fail(name: str, step: str = step) -> None:
            if name == step:
                raise RuntimeError(f"injected failure at {step}")

        with pytest.raises(RuntimeError, match="injected failure"):
            warehouse.publish(run_id=RUN, review_id=REVIEW, fault=fail)
        assert snapshot(warehouse) == before, f"a failure at {step!r} left a partial swap"
    assert warehouse.publish(run_id=RUN, review_id=REVIEW).outcome == "published"


def test_rollback_restores_the_production_the_publish_replaced(warehouse: DuckDBPublisher) -> None:
    before = snapshot(warehouse)
    warehouse.publish(run_id=RUN, review_id=REVIEW)
    with warehouse.warehouse.connect() as conn:  # the views' source changes on its own (a day's landing load)
        conn.execute("insert into ssb.src values (99)")
    result = warehouse.rollback()
    assert (result.restored_run_id, result.restored_review_id, result.withdrawn_run_id) == (
        "manual__2025",
        "aaaaaaaaaaaa",
        RUN,
    )
    # What production holds again, against the withdrawn build: t and the view v differ, old_only is back, the
    # view ``same`` shows what the withdrawn one showed.
    assert result.relations == [("old_only", "added"), ("same", "unchanged"), ("t", "changed"), ("v", "changed")]
    after = snapshot(warehouse)
    assert after["dwh.t"] == before["dwh.t"] and after["dwh.old_only"] == before["dwh.old_only"]
    assert after["develop_dwh.t"] == before["develop_dwh.t"]
    assert after["dwh._wap_marker"] == before["dwh._wap_marker"]
    with pytest.raises(PublishRefused, match="not put in place by a WAP publish"):  # no second rollback
        warehouse.rollback()
    assert snapshot(warehouse) == after


def test_rollback_refuses_when_the_old_production_is_gone_or_edited(warehouse: DuckDBPublisher) -> None:
    warehouse.publish(run_id=RUN, review_id=REVIEW)
    with warehouse.warehouse.connect() as conn:
        conn.execute("insert into develop_dwh.t values (7, 'edited after the publish')")
    published = snapshot(warehouse)
    with pytest.raises(PublishRefused, match="changed since it was production"):
        warehouse.rollback()
    with warehouse.warehouse.connect() as conn:  # a new run rebuilt the write schema and audited it
        conn.execute("delete from develop_dwh.t where id = 7")
    audit(warehouse.warehouse, "manual__next", "cccccccccccc")
    with pytest.raises(PublishRefused, match="no longer holds the production run manual__2025"):
        warehouse.rollback()
    assert {k: v for k, v in snapshot(warehouse).items() if k.startswith("dwh.")} == {
        k: v for k, v in published.items() if k.startswith("dwh.")
    }


def test_rollback_after_a_first_publish_has_nothing_to_restore(warehouse: DuckDBPublisher) -> None:
    with warehouse.warehouse.connect() as conn:
        conn.execute("drop schema dwh cascade")
    warehouse.publish(run_id=RUN, review_id=REVIEW)
    with pytest.raises(PublishRefused, match="was the first"):
        warehouse.rollback()


def test_a_production_built_outside_wap_can_be_rolled_back_to(warehouse: DuckDBPublisher) -> None:
    """The demo's production was built by dbt directly: the first publish fingerprints it ("before-wap")."""
    with warehouse.warehouse.connect() as conn:
        conn.execute("drop table dwh._wap_marker")
    before = snapshot(warehouse)
    assert warehouse.publish(run_id=RUN, review_id=REVIEW).previous_run_id == "before-wap"
    result = warehouse.rollback()
    assert (result.restored_run_id, result.restored_review_id, result.withdrawn_run_id) == ("before-wap", None, RUN)
    after = snapshot(warehouse)
    assert {k: v for k, v in after.items() if k.startswith("dwh.") and "_wap_" not in k} == {
        k: v for k, v in before.items() if k.startswith("dwh.")
    }


def test_views_that_read_their_neighbours_relatively_move_in_dependency_order(
    warehouse: DuckDBPublisher,
) -> None:
    """A view built by the bundle names its neighbours without a schema: each must move after what it reads (DuckDB
    binds a view's names when it is created), and afterwards it reads production."""
    with warehouse.warehouse.connect() as conn:
        conn.execute("create view develop_dwh.z_base as select id, v from t")  # resolved in develop_dwh
        conn.execute("create view develop_dwh.a_top as select id from z_base where id > 1")
    audit(warehouse.warehouse, RUN, REVIEW)
    assert warehouse.publish(run_id=RUN, review_id=REVIEW).relations == ["a_top", "same", "t", "v", "z_base"]
    with warehouse.warehouse.connect() as conn:
        conn.execute("insert into dwh.t values (9, 'late')")
        assert conn.execute("select id from dwh.a_top order by id").fetchall() == [(2,), (3,), (9,)]
        # the previous production moved into develop_dwh keeps its own views, reading develop_dwh
        assert conn.execute("select count(*) from develop_dwh.t").fetchall() == [(3,)]
