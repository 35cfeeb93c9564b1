"""Publish: the guarded swap of the write schema with production, and the checks around it.

Right before the swap, in the same transaction where the warehouse allows it, the guards fail closed:

- the write schema's marker names this run and the approved review id, and every relation's row count and
  content hash still equal what the audit recorded (a rebuild or a manual edit after the review is refused);
- production's marker does not already name this run: then this run published already (a retry after a
  successful swap), and the publish is a no-op, never a second swap that would undo the first;
- no view in the write schema names the write schema (after the swap it would read the old data).

After the swap the markers must have moved: production names this run, the write schema holds the previous
production's marker (none on a first publish).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wap.audit import marker as audit_marker
from wap.audit.dialect import Dialect
from wap.audit.engine import read_catalog
from wap.audit.marker import Marker, current_fingerprints
from wap.audit.swap_safety import views_naming
from wap.config import WapError
from wap.publish.assets import statuses_between

if TYPE_CHECKING:
    from wap.warehouse import Query


class PublishRefused(WapError):
    """A guard failed: nothing was swapped. The message says which and why."""


@dataclass
class PublishResult:
    outcome: str  # "published" or "already published"
    run_id: str
    review_id: str
    previous_run_id: str | None = None
    relations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "run_id": self.run_id,
            "review_id": self.review_id,
            "previous_run_id": self.previous_run_id,
            "relations": self.relations,
        }


def read_marker(query: Query, dialect: Dialect, schema: str) -> Marker | None:
    """:func:`wap.audit.marker.read_marker`; a marker that cannot be trusted refuses the publish."""
    try:
        return audit_marker.read_marker(query, dialect, schema)
    except audit_marker.MarkerError as error:
        raise PublishRefused(str(error)) from None


def check_before_swap(
    query: Query, dialect: Dialect, *, write_schema: str, prod_schema: str, run_id: str, review_id: str
) -> tuple[bool, Marker | None]:
    """The guards. Returns (already published, production's marker); raises :class:`PublishRefused`."""
    production = read_marker(query, dialect, prod_schema)
    if production is not None and production.run_id == run_id:
        if production.review_id != review_id:
            raise PublishRefused(
                f"{prod_schema} holds run {run_id} with review {production.review_id}, not the approved {review_id}"
            )
        return True, production
    marker = read_marker(query, dialect, write_schema)
    if marker is None:
        raise PublishRefused(f"{write_schema} has no audit marker: it was not audited (or was rebuilt); refusing")
    if marker.run_id != run_id:
        raise PublishRefused(
            f"{write_schema} holds the build of run {marker.run_id}, not of this run {run_id}: refusing to publish it"
        )
    if marker.review_id != review_id:
        raise PublishRefused(
            f"{write_schema} was audited as review {marker.review_id}, but review {review_id} was approved: refusing"
        )
    now = current_fingerprints(query, dialect, write_schema)
    differences = _differences(marker.fingerprints, now)
    if differences:
        raise PublishRefused(
            f"{write_schema} changed after review {review_id} was audited ({'; '.join(differences)}): "
            "it is not what was approved; refusing"
        )
    blocked = views_naming(query, dialect, write_schema)
    if blocked:
        raise PublishRefused(
            f"views in {write_schema} name {write_schema} ({', '.join(blocked)}): after the swap they would read "
            "the old data; refusing"
        )
    return False, production


def check_after_swap(
    query: Query, dialect: Dialect, *, write_schema: str, prod_schema: str, run_id: str, previous: Marker | None
) -> None:
    production = read_marker(query, dialect, prod_schema)
    if production is None or production.run_id != run_id:
        raise PublishRefused(f"after the swap {prod_schema}'s marker does not name run {run_id}")
    moved = read_marker(query, dialect, write_schema)
    if (moved.run_id if moved else None) != (previous.run_id if previous else None):
        raise PublishRefused(f"after the swap {write_schema} does not hold the previous production's marker")


def _differences(
    recorded: dict[str, tuple[int | None, str | None]], now: dict[str, tuple[int, str | None]]
) -> list[str]:
    differences = [f"{name} is new" for name in sorted(set(now) - set(recorded))]
    differences += [f"{name} is gone" for name in sorted(set(recorded) - set(now))]
    for name in sorted(set(now) & set(recorded)):
        (count, digest), (count_now, digest_now) = recorded[name], now[name]
        if count != count_now:
            differences.append(f"{name} has {count_now} rows, audited {count}")
        elif digest != digest_now:
            differences.append(f"{name}'s content differs from the audited content")
    return differences


PUBLISHED_TABLE = "_wap_published"


def read_published(query: Query, dialect: Dialect, schema: str) -> tuple[str, str, str | None] | None:
    """(run id, review id, run id of the production it replaced) of the publish that put ``schema`` in place."""
    catalog = read_catalog(query, dialect, [schema])[schema]
    if PUBLISHED_TABLE not in catalog:
        return None
    table = dialect.relation(schema, catalog[PUBLISHED_TABLE].name)
    rows = query(f"select run_id, review_id, replaced_run_id from {table}", [])
    return tuple(rows[0]) if len(rows) == 1 else None  # type: ignore[return-value]


@dataclass
class RollbackResult:
    """What a rollback put back: the run (and review) production holds again, the run it withdrew, and each
    relation production now holds with its status against the withdrawn build (``added``, ``changed``,
    ``unchanged``)."""

    restored_run_id: str
    restored_review_id: str | None
    withdrawn_run_id: str
    relations: list[tuple[str, str]] = field(default_factory=list)

    def describe(self, prod_schema: str, write_schema: str) -> str:
        """``dwh holds run A again (run B is in develop_dwh)``."""
        return (
            f"{prod_schema} holds run {self.restored_run_id} again (run {self.withdrawn_run_id} is in {write_schema})"
        )


def check_before_rollback(query: Query, dialect: Dialect, *, write_schema: str, prod_schema: str) -> RollbackResult:
    """The rollback guards: production was put in place by a publish, and the write schema still holds,
    unchanged, the production that publish replaced. Returns what the rollback will put back."""
    record = read_published(query, dialect, prod_schema)
    if record is None:
        raise PublishRefused(f"{prod_schema} was not put in place by a WAP publish: nothing to roll back")
    run_id, _, replaced = record
    if replaced is None:
        raise PublishRefused(f"the publish of run {run_id} was the first: there is no earlier production to restore")
    held = read_marker(query, dialect, write_schema)
    if held is None or held.run_id != replaced:
        raise PublishRefused(
            f"{write_schema} no longer holds the production run {replaced} that run {run_id} replaced "
            f"(it holds {held.run_id if held else 'no audited build'}): refusing to roll back"
        )
    catalog = read_catalog(query, dialect, [write_schema])[write_schema]
    now = current_fingerprints(query, dialect, write_schema)
    # A view holds no data: what it shows follows its sources, outside both schemas, which change on their own
    # (a day's landing load). A view is checked for its presence; a table for its rows and content.
    views = {lower for lower, relation in catalog.items() if relation.kind == "view"}
    recorded = {
        name: now[name] if name in views and name in now else value for name, value in held.fingerprints.items()
    }
    differences = _differences(recorded, now)
    if differences:
        raise PublishRefused(f"{write_schema} changed since it was production ({'; '.join(differences)}): refusing")
    # What goes back against what production holds now: a table by its data, a view by what it shows today.
    relations = statuses_between(
        now, current_fingerprints(query, dialect, prod_schema), {lower: rel.name for lower, rel in catalog.items()}
    )
    review = held.review_id if held.review_id not in ("", "-") else None
    return RollbackResult(replaced, review, run_id, relations)
