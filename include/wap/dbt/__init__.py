"""The Write stage's dbt side: how Cosmos renders and runs the project (``cosmos``), what the audit reads from the
manifest (``manifest``: each model's key), and the test results carried from the build to the report
(``results``)."""
