"""``WAP_GRANTS_ON_SWAP=copy``: the GRANT statements publish runs before the Snowflake swap."""

from __future__ import annotations

import pytest

from wap.publish.grants import copy_grant_statements


def test_copy_grant_statements_are_exact_and_refuse_odd_text() -> None:
    missing = {("USAGE", "ROLE", "BI"), ("CREATE TABLE", "DATABASE_ROLE", 'we"ird')}
    assert copy_grant_statements('"DB"."DEVELOP_DWH"', missing) == [
        'GRANT CREATE TABLE ON SCHEMA "DB"."DEVELOP_DWH" TO DATABASE ROLE "we""ird"',
        'GRANT USAGE ON SCHEMA "DB"."DEVELOP_DWH" TO ROLE "BI"',
    ]
    with pytest.raises(ValueError, match="refusing to build SQL"):
        copy_grant_statements('"DB"."S"', {("USAGE; DROP", "ROLE", "X")})
