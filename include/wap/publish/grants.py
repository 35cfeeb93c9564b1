"""``WAP_GRANTS_ON_SWAP=copy``: before the Snowflake swap, grant the write schema what production grants.

What differs is found by :mod:`wap.audit.swap_safety`; this module only writes the ``GRANT`` statements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wap.audit.dialect import SnowflakeDialect
from wap.audit.swap_safety import Grant, schema_grants

if TYPE_CHECKING:
    from wap.warehouse.snowflake import SnowflakeWarehouse

_KEYWORDS = re.compile(r"[A-Z][A-Z_ ]*")


def copy_grant_statements(write_name: str, missing: Iterable[Grant]) -> list[str]:
    """``GRANT`` statements giving the write schema production's missing grants (``write_name`` is quoted)."""
    statements = []
    for privilege, granted_to, grantee in sorted(missing):
        if not _KEYWORDS.fullmatch(privilege) or not _KEYWORDS.fullmatch(granted_to):
            raise ValueError(f"unexpected grant {privilege!r} to {granted_to!r}: refusing to build SQL from it")
        quoted = '"' + grantee.replace('"', '""') + '"'
        statements.append(f"GRANT {privilege} ON SCHEMA {write_name} TO {granted_to.replace('_', ' ')} {quoted}")
    return statements


def copy_grants(warehouse: SnowflakeWarehouse) -> list[str]:
    """Grant production's missing grants on the write schema; returns the statements run."""
    write, prod = warehouse.config.write_schema, warehouse.config.prod_schema
    missing = schema_grants(warehouse, prod) - schema_grants(warehouse, write)
    statements = copy_grant_statements(SnowflakeDialect.qualified(warehouse.database, write), missing)
    with warehouse.session() as query:
        for statement in statements:
            query(statement, [])
    return statements
