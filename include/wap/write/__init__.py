"""The Write stage's own step, before dbt builds: the write schema starts from production's state.

``state`` (which relations carry state across cycles: incremental models and snapshots, from the manifest) and
``reset`` (empty the write schema of every relation an earlier cycle left, then clone or copy those relations from
production). The dbt build itself is the Cosmos task group (:mod:`wap.dbt.cosmos`).
"""
