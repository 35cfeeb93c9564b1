"""Downstream: a publish or a rollback announces the relations it put into production, one Airflow Asset each.

Names, as the providers and OpenLineage name warehouse tables:

- Snowflake: ``snowflake://<account>/<DATABASE>/<SCHEMA>/<TABLE>``, the Snowflake provider's Asset URI (its
  ``create_asset`` and ``sanitize_uri``), which the provider converts to OpenLineage's dataset
  ``snowflake://<account>`` / ``DATABASE.SCHEMA.TABLE``. The account is spelled as OpenLineage spells a Snowflake
  namespace (``fix_account_name``: ``myorg-myaccount`` as it is, a bare locator with its region and cloud);
  unquoted identifiers are upper case, as Snowflake stores them.
- DuckDB: ``duckdb:/<absolute path of the database file>/<schema>/<table>``, lower case: OpenLineage's
  ``duckdb://<path>`` in the form Airflow normalizes a URI without a host to (it drops the empty ``//`` from the
  URI but keeps a default name as written, so ``Asset("duckdb:///...")`` would be another Asset, whose URI
  clashes with this one's: name it with :func:`relation_asset`). DuckDB has no host or
  account: a database is its file, which is how OpenLineage's dbt integration names a DuckDB namespace
  (``duckdb://<path>``); schema and table follow as path segments, as in the Snowflake and Postgres URIs. The
  catalog name inside the file is the file's stem, so it adds nothing. The URI is that file's on this machine.

The Asset's name is its URI (what ``Asset(uri)`` and the provider's factory give), so a consumer that writes
``Asset("snowflake://...")`` is the same Asset. The events go through one :class:`~airflow.sdk.AssetAlias`
per DAG (``<dag_id>__published``): which relations a publish puts into production is known only when it runs.
Each event's extra says which build production now holds (``run_id``, ``review_id``) and why (``action``).
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wap.config import ConfigError, WapError

if TYPE_CHECKING:
    from airflow.sdk import Asset, AssetAlias

    from wap.config import WapConfig

log = logging.getLogger(__name__)

#: Statuses of a relation in production after a publish or rollback, as the audit report spells them.
ANNOUNCED = ("added", "changed")
_UNQUOTED = re.compile(r"\A[A-Za-z_][A-Za-z0-9_$]*\Z")


def alias_name(dag_id: str) -> str:
    """The name of the Asset alias the publish and the rollback of ``dag_id`` emit their events through."""
    return f"{dag_id}__published"


def published_alias(dag_id: str) -> AssetAlias:
    """The :class:`~airflow.sdk.AssetAlias` of ``dag_id``'s publishes and rollbacks (an outlet of both tasks)."""
    from airflow.sdk import AssetAlias

    return AssetAlias(name=alias_name(dag_id))


def duckdb_uri(path: Path | str, schema: str, relation: str) -> str:
    """``duckdb:<absolute file path>/<schema>/<relation>``, lower-case names (DuckDB folds them): a spelling
    Airflow's URI normalization leaves as it is, so the Asset's default name and its URI are the same string."""
    location = urllib.parse.quote(Path(path).resolve().as_posix(), safe="/")
    return f"duckdb:{location}/{_segment(schema.lower())}/{_segment(relation.lower())}"


def snowflake_uri(account: str, database: str, schema: str, relation: str) -> str:
    """``snowflake://<account>/<DATABASE>/<SCHEMA>/<RELATION>``; each name as Snowflake resolves it (an unquoted
    identifier in upper case; any other spelling, e.g. the catalog's ``"MixedCase"``, as it is)."""
    from airflow.providers.snowflake.utils.openlineage import fix_account_name

    names = "/".join(_segment(_snowflake_name(name)) for name in (database, schema, relation))
    return f"snowflake://{fix_account_name(account)}/{names}"


def relation_uri(config: WapConfig, relation: str, *, account: str | None = None) -> str:
    """The URI of production's ``relation`` on the configured warehouse. On Snowflake the account is ``account``,
    else ``WAP_SNOWFLAKE_ACCOUNT``; without either it is a :class:`ConfigError` naming the setting."""
    if config.warehouse == "duckdb":
        return duckdb_uri(config.duckdb_path, config.prod_schema, relation)
    account = account or config.snowflake_account
    if not account:
        raise ConfigError(
            "WAP_SNOWFLAKE_ACCOUNT is not set: the Asset of a published Snowflake relation names its account "
            "(snowflake://<account>/...); set it to the account of the Snowflake connection to name the Asset here"
        )
    return snowflake_uri(account, config.snowflake_database or "", config.prod_schema, relation)


def stored_name(config: WapConfig, relation: str) -> str:
    """``relation`` as the configured warehouse stores it: on Snowflake a lower-case unquoted name (a dbt model's)
    in upper case; otherwise as written."""
    return _snowflake_name(relation) if config.warehouse == "snowflake" else relation


def relation_asset(config: WapConfig, relation: str, *, account: str | None = None) -> Asset:
    """The Asset a publish announces for production's ``relation`` (a consumer's ``schedule``); see the module."""
    from airflow.sdk import Asset

    return Asset(uri=relation_uri(config, relation, account=account))


def connection_account(config: WapConfig) -> str:
    """The account of the Snowflake connection (its ``account`` extra), as the Snowflake hook reads it."""
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    extra = SnowflakeHook.get_connection(config.snowflake_conn_id).extra_dejson
    account = extra.get("account") or extra.get("extra__snowflake__account")
    if not account:
        raise WapError(f"the Snowflake connection {config.snowflake_conn_id!r} names no account (its 'account' extra)")
    return str(account)


def check_account(config: WapConfig) -> None:
    """On Snowflake with ``WAP_SNOWFLAKE_ACCOUNT`` set: it is the connection's account (else the Assets a DAG names
    at parse time would never get an event). Raises :class:`ConfigError` naming both."""
    if config.warehouse != "snowflake" or not config.snowflake_account:
        return
    from airflow.providers.snowflake.utils.openlineage import fix_account_name

    actual = connection_account(config)
    if fix_account_name(actual).lower() != fix_account_name(config.snowflake_account).lower():
        raise ConfigError(
            f"WAP_SNOWFLAKE_ACCOUNT={config.snowflake_account!r} is not the account of the Snowflake connection "
            f"{config.snowflake_conn_id!r} ({actual!r}): the published relations' Assets would not be the ones "
            "DAGs are scheduled on"
        )


@dataclass(frozen=True)
class Announcement:
    """A relation production now holds, and what happened to it (``added``, ``changed``, ``unchanged``)."""

    relation: str
    status: str
    uri: str


def statuses_of_report(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(relation, status)`` of every relation a publish of ``report``'s build puts into production (removed ones
    are not in it)."""
    return [
        (entry["name"], entry["status"]) for entry in report.get("relations", []) if entry.get("status") != "removed"
    ]


def statuses_between(
    incoming: Mapping[str, tuple[int | None, str | None]],
    outgoing: Mapping[str, tuple[int | None, str | None]],
    names: Mapping[str, str],
) -> list[tuple[str, str]]:
    """``(relation, status)`` of the relations production holds after a swap that puts ``incoming``'s relations in
    place of ``outgoing``'s (both ``{lower-case name: (row count, content hash)}``, as the markers record them);
    ``names`` spells each lower-case name as the catalog does."""
    statuses = []
    for lower in sorted(incoming):
        if lower not in outgoing:
            status = "added"
        elif incoming[lower] != outgoing[lower]:
            status = "changed"
        else:
            status = "unchanged"
        statuses.append((names.get(lower, lower), status))
    return statuses


def announcements(
    config: WapConfig, statuses: Iterable[tuple[str, str]], *, account: str | None = None
) -> list[Announcement]:
    """What to announce: the added and changed relations, and the unchanged ones under ``WAP_ANNOUNCE_UNCHANGED``."""
    wanted = ANNOUNCED + (("unchanged",) if config.announce_unchanged else ())
    return [
        Announcement(relation, status, relation_uri(config, relation, account=account))
        for relation, status in statuses
        if status in wanted
    ]


def announce(
    outlet_events: Any, dag_id: str, chosen: Sequence[Announcement], extra: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Add an event for each of ``chosen`` to the task's ``outlet_events`` through ``dag_id``'s alias (Airflow
    records them when the task succeeds); each event's extra is ``extra`` plus the relation and its status.
    Returns what was announced, for the task's return value."""
    from airflow.sdk import Asset

    alias = outlet_events[published_alias(dag_id)]
    announced = []
    for item in chosen:
        event_extra = {**extra, "relation": item.relation, "status": item.status}
        alias.add(Asset(uri=item.uri), extra=event_extra)
        announced.append({"uri": item.uri, **event_extra})
        log.info("Announcing %s (%s): an event of Asset %s", item.relation, item.status, item.uri)
    if not chosen:
        log.info("No relation to announce: nothing production holds changed (WAP_ANNOUNCE_UNCHANGED is off)")
    return announced


def announced_already(inlet_events: Any, dag_id: str, *, source_dag_id: str, run_id: str, since: Any) -> bool:
    """Whether a task of run ``run_id`` of ``source_dag_id`` emitted events through ``dag_id``'s alias since
    ``since`` (the run's ``run_after``, which a Clear does not move): then a publish of this run that swapped
    also succeeded and announced, and a later try announces nothing again."""
    events = inlet_events[published_alias(dag_id)].after(since)
    return any(event.source_dag_id == source_dag_id and event.source_run_id == run_id for event in events)


def announce_publish(
    config: WapConfig,
    *,
    outlet_events: Any,
    inlet_events: Any,
    dag_run: Any,
    review_id: str,
    report: Mapping[str, Any] | None,
    swapped: bool,
    account: str | None = None,
) -> list[dict[str, Any]]:
    """After a publish of ``dag_run``: announce the relations of ``report`` it put into production.

    ``swapped`` is False for a try that found the swap done (a retry): it announces only if no try of this run
    announced (the try that swapped was killed before it succeeded), so a consumer runs once per publish.
    """
    run_id = dag_run.run_id
    if not swapped:
        if announced_already(
            inlet_events, config.dag_id, source_dag_id=dag_run.dag_id, run_id=run_id, since=dag_run.run_after
        ):
            log.info("The publish of run %s was announced by the try that swapped: nothing to announce again", run_id)
            return []
        log.info("The try that swapped ended before its announcement: announcing the publish of run %s now", run_id)
    if report is None:
        log.warning("No audit report for run %s: nothing to announce", run_id)
        return []
    chosen = announcements(config, statuses_of_report(report), account=account)
    extra = {"action": "publish", "run_id": run_id, "review_id": review_id}
    return announce(outlet_events, config.dag_id, chosen, extra)


def _snowflake_name(name: str) -> str:
    return name.upper() if _UNQUOTED.match(name) and name == name.lower() else name


def _segment(name: str) -> str:
    return urllib.parse.quote(name, safe="")
