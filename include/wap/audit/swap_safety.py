"""Swap safety: what would go wrong if the write schema became production by a swap.

The audit reports these findings; publish refuses while a ``block`` finding holds.

- A view whose definition names the write schema would read the old data after the swap (block, both warehouses).
- Snowflake: ``ALTER SCHEMA a SWAP WITH b`` swaps the schemas whole, with their grants and properties. If the write
  schema lacks a grant production has, readers lose access at publish. ``WAP_GRANTS_ON_SWAP`` decides: ``block``
  (the default: publish refuses while they differ) or ``copy`` (publish grants production's grants on the write
  schema right before the swap, :mod:`wap.publish.grants`). Properties (transient, managed access, retention) that
  differ are warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

from wap.audit.dialect import Dialect, SnowflakeDialect

if TYPE_CHECKING:
    from wap.warehouse import Query
    from wap.warehouse.snowflake import SnowflakeWarehouse

#: A grant as SHOW GRANTS describes it: (privilege, granted_to, grantee_name).
Grant = tuple[str, str, str]
PROPERTIES = ("is_transient", "is_managed_access", "retention_time")

#: The ``CREATE VIEW <name> AS`` head of a view's definition (it names the view's own schema; the body matters).
_CREATE_VIEW = re.compile(
    r"^\s*create\s+(?:or\s+replace\s+)?(?:secure\s+)?(?:recursive\s+)?view\s+.+?\s+as\s+", re.I | re.S
)


def views_naming(query: Query, dialect: Dialect, schema: str) -> list[str]:
    """Views of ``schema`` whose definition names ``schema``: after a swap they would read the old data."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_$]){re.escape(schema)}(?![A-Za-z0-9_$])|\"{re.escape(schema)}\"", re.I)
    sql, params = dialect.view_definitions(schema)
    return sorted(
        name
        for name, definition in query(sql, params)
        if definition and pattern.search(_CREATE_VIEW.sub("", definition))
    )


def view_findings(query: Query, dialect: Dialect, write_schema: str) -> list[dict[str, str]]:
    """A ``block`` finding for each view of the write schema that names the write schema."""
    return [
        {
            "check": "view_names_write_schema",
            "severity": "block",
            "relation": name,
            "message": f"view {name} names {write_schema}: after the swap it would read the previous production",
        }
        for name in views_naming(query, dialect, write_schema)
    ]


def grants_from_show(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> set[Grant]:
    """The grants in ``SHOW GRANTS ON SCHEMA`` output (ownership excluded: it is not copied by a grant)."""
    index = {name.lower(): i for i, name in enumerate(columns)}
    grants = set()
    for row in rows:
        privilege = str(row[index["privilege"]]).upper()
        if privilege != "OWNERSHIP":
            grants.add((privilege, str(row[index["granted_to"]]).upper(), str(row[index["grantee_name"]])))
    return grants


def grant_findings(write_schema: str, prod_schema: str, write: set[Grant], prod: set[Grant], policy: str) -> list[dict]:
    """Findings for grants production has and the write schema lacks (and the reverse)."""
    severity = "block" if policy == "block" else "warn"
    findings = []
    for privilege, granted_to, grantee in sorted(prod - write):
        findings.append(
            {
                "check": "grant_missing_in_write_schema",
                "severity": severity,
                "relation": f"{granted_to} {grantee}",
                "message": f"{prod_schema} grants {privilege} to {granted_to} {grantee}, {write_schema} does not: "
                f"after the swap it would be lost"
                + (" (WAP_GRANTS_ON_SWAP=copy grants it before the swap)" if policy == "copy" else ""),
            }
        )
    for privilege, granted_to, grantee in sorted(write - prod):
        findings.append(
            {
                "check": "grant_only_in_write_schema",
                "severity": "warn",
                "relation": f"{granted_to} {grantee}",
                "message": f"{write_schema} grants {privilege} to {granted_to} {grantee}, {prod_schema} does not: "
                "after the swap production would grant it",
            }
        )
    return findings


def property_findings(write_schema: str, prod_schema: str, write: Mapping[str, Any], prod: Mapping[str, Any]) -> list:
    return [
        {
            "check": "schema_property_differs",
            "severity": "warn",
            "relation": name,
            "message": f"{name} is {write.get(name)!r} on {write_schema} and {prod.get(name)!r} on {prod_schema}: "
            "it travels with the swap",
        }
        for name in PROPERTIES
        if write.get(name) != prod.get(name)
    ]


# -- reading them on Snowflake ----------------------------------------------------------------------------------
def schema_findings(warehouse: SnowflakeWarehouse) -> list[dict[str, Any]]:
    """Snowflake's findings: grants production has and the write schema lacks (and the reverse), and schema
    properties that differ."""
    write, prod = warehouse.config.write_schema, warehouse.config.prod_schema
    findings = property_findings(write, prod, schema_properties(warehouse, write), schema_properties(warehouse, prod))
    try:
        write_grants, prod_grants = schema_grants(warehouse, write), schema_grants(warehouse, prod)
    except Exception as error:  # e.g. the role may not SHOW GRANTS: unknown grants fail closed under "block"
        severity = "block" if warehouse.config.grants_on_swap == "block" else "warn"
        message = f"cannot read the grants of {write} and {prod} ({error}); the swap would carry them unchecked"
        return [{"check": "grants_unreadable", "severity": severity, "relation": "", "message": message}, *findings]
    return grant_findings(write, prod, write_grants, prod_grants, warehouse.config.grants_on_swap) + findings


def schema_grants(warehouse: SnowflakeWarehouse, schema: str) -> set[Grant]:
    with warehouse.connect() as conn, closing(conn.cursor()) as cursor:
        cursor.execute(f"SHOW GRANTS ON SCHEMA {SnowflakeDialect.qualified(warehouse.database, schema)}")
        columns = [column[0] for column in cursor.description]
        return grants_from_show(columns, cursor.fetchall())


def schema_properties(warehouse: SnowflakeWarehouse, schema: str) -> dict[str, Any]:
    with warehouse.session(read_only=True) as query:
        rows = query(
            f"select {', '.join(PROPERTIES)} from information_schema.schemata where schema_name = %s",
            [SnowflakeDialect.identifier(schema).strip('"')],
        )
    return dict(zip(PROPERTIES, rows[0], strict=True)) if rows else {}
