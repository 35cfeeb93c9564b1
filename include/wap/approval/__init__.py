"""The Approve stage: the approval Variable's protocol (``protocol``, no Airflow), the deferrable sensor
(``sensor``) and the trigger it defers to (``trigger``, run by the triggerer), and reviews as Airflow's metadata
knows them, with the one way to decide them (``reviews``: the CLI and the review view)."""
