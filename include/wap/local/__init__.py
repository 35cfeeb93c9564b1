"""The machinery that runs the bundle on one machine: the real Airflow components on 127.0.0.1 (``cluster``),
the demo's data and warehouse (``landing``, ``demo``), one WAP cycle of the configured project (``cycle``:
`wap cycle`) and the Astro ``airflow_settings.yaml`` loader (``settings``).

Product code never imports this package (``make lint`` checks it); only the ``wap`` CLI and the tests do.
"""
