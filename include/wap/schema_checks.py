"""Swap-safety checks of what travels with a Snowflake schema swap: grants and schema properties.

``ALTER SCHEMA a SWAP WITH b`` swaps the schemas whole, with their grants and properties. If the write schema
lacks a grant production has, readers lose access at publish. ``WAP_GRANTS_ON_SWAP`` decides: ``block`` (the
default: publish refuses while they differ) or ``copy`` (publish grants production's grants on the write schema
right before the swap). Properties (transient, managed access, retention) that differ are warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: A grant as SHOW GRANTS describes it: (privilege, granted_to, grantee_name).
Grant = tuple[str, str, str]
_KEYWORDS = re.compile(r"[A-Z][A-Z_ ]*")
PROPERTIES = ("is_transient", "is_managed_access", "retention_time")


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


def copy_grant_statements(write_name: str, missing: Iterable[Grant]) -> list[str]:
    """``GRANT`` statements giving the write schema production's missing grants (``write_name`` is quoted)."""
    statements = []
    for privilege, granted_to, grantee in sorted(missing):
        if not _KEYWORDS.fullmatch(privilege) or not _KEYWORDS.fullmatch(granted_to):
            raise ValueError(f"unexpected grant {privilege!r} to {granted_to!r}: refusing to build SQL from it")
        quoted = '"' + grantee.replace('"', '""') + '"'
        statements.append(f"GRANT {privilege} ON SCHEMA {write_name} TO {granted_to.replace('_', ' ')} {quoted}")
    return statements


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
