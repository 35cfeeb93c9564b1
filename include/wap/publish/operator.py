"""The publish task on Snowflake: ``ALTER SCHEMA ... SWAP WITH`` through ``SQLExecuteQueryOperator``.

The guards of :mod:`wap.publish.guards` run right before the swap (a retry after a successful swap is a no-op), and
the markers are checked after it. Snowflake's swap is one atomic, metadata-only statement.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from wap import failpoints


class SnowflakePublishOperator(SQLExecuteQueryOperator):
    """Publish the approved review of this run on Snowflake (``snowflake_default`` unless configured)."""

    def __init__(self, *, approval_task_id: str = "await_approval", **kwargs: Any) -> None:
        from wap.config import load_config
        from wap.publish.snowflake import SnowflakePublisher
        from wap.warehouse.snowflake import SnowflakeWarehouse

        config = load_config()
        kwargs.setdefault("conn_id", config.snowflake_conn_id)
        kwargs.setdefault("sql", SnowflakePublisher(SnowflakeWarehouse(config)).swap_sql())
        super().__init__(autocommit=True, **kwargs)
        self.approval_task_id = approval_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from wap.approval.protocol import AUDIT_TASK_ID, DECISION_XCOM_KEY, approved_by, approved_review_id
        from wap.audit.swap_safety import schema_findings
        from wap.config import WapError, load_config
        from wap.history.outcome import record_outcome
        from wap.publish.assets import announce_publish, connection_account
        from wap.publish.grants import copy_grants
        from wap.publish.guards import PublishRefused
        from wap.publish.snowflake import SnowflakePublisher
        from wap.warehouse.snowflake import SnowflakeWarehouse

        decision = context["ti"].xcom_pull(task_ids=self.approval_task_id, key=DECISION_XCOM_KEY) or {}
        review_id = approved_review_id(decision)
        if review_id is None:
            raise AirflowFailException(f"no approval to publish (decision: {decision!r}): refusing")
        run_id = context["run_id"]
        config = load_config()
        warehouse = SnowflakeWarehouse(config)
        publisher = SnowflakePublisher(warehouse)
        try:  # the account the Assets name, before anything is swapped: a connection without one fails here
            account = config.snowflake_account or connection_account(config)
        except WapError as error:
            raise AirflowFailException(f"cannot name the published relations' Assets: {error}") from None

        def announced(swapped: bool) -> list[dict[str, Any]]:
            return announce_publish(
                config,
                outlet_events=context["outlet_events"],
                inlet_events=context["inlet_events"],
                dag_run=context["dag_run"],
                review_id=review_id,
                report=context["ti"].xcom_pull(task_ids=AUDIT_TASK_ID),
                swapped=swapped,
                account=account,
            )

        try:
            already, previous = publisher.check_publish(run_id=run_id, review_id=review_id)
            if already:
                self.log.info("Run %s was published already (a retry after the swap): no second swap", run_id)
                if publisher.complete_publish(run_id=run_id, review_id=review_id):
                    self.log.info("Recorded the publish, which the crashed attempt had not")
                record_outcome(config, run_id, "published", decided_by=decision.get("decided_by"))
                return {
                    "outcome": "already published",
                    "run_id": run_id,
                    "review_id": review_id,
                    "announced": announced(swapped=False),
                }
            findings = schema_findings(warehouse)
            for finding in findings:
                self.log.warning("Swap safety (%s): %s", finding["severity"], finding["message"])
            blocking = [finding["message"] for finding in findings if finding["severity"] == "block"]
            if blocking:
                raise PublishRefused("swap-safety checks block the swap: " + "; ".join(blocking))
            if warehouse.config.grants_on_swap == "copy":
                for statement in copy_grants(warehouse):
                    self.log.info("Copied a grant of production before the swap: %s", statement)
            self.log.info("Guards passed; swapping: %s", self.sql)
            super().execute(context)
            failpoints.crash_if_armed("publish.after_swap")
            publisher.finish_publish(run_id=run_id, review_id=review_id, previous=previous)
            by = decision.get("decided_by")
            self.log.info(
                "Published review %s of run %s into %s%s", review_id, run_id, config.prod_schema, approved_by(by)
            )
            record_outcome(config, run_id, "published", decided_by=by)
        except PublishRefused as refusal:
            raise AirflowFailException(str(refusal)) from refusal
        return {
            "outcome": "published",
            "run_id": run_id,
            "review_id": review_id,
            "previous_run_id": previous.run_id if previous else None,
            "decided_by": decision.get("decided_by"),
            "announced": announced(swapped=True),
        }
