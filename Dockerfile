# The WAP bundle's image, for Astro (`astro deploy`) or any cluster (`docker build`).
#
# Astro Runtime 3.3-8 ships Apache Airflow 3.3.2, the apache-airflow pin of requirements-dev.txt
# (tests/test_packaging.py checks the two agree). Source: the Runtime version catalog as the Astro CLI reads it
# (3.3-7 = Airflow 3.3.1, 3.3-8 = 3.3.2); not verified against the image here (no Docker engine). Check with
#   docker run --rm astrocrpublic.azurecr.io/runtime:3.3-8-python-3.12 airflow version
# and see https://www.astronomer.io/docs/runtime/runtime-release-notes before moving the tag.
# The -python-3.12 flavour: Runtime 3.3 runs Python 3.14 by default, and dbt-core 1.11 pins mashumaro<3.15,
# which cannot build dbt's serializers on 3.14. Both environments below resolve on 3.12 (uv pip compile).
#
# The base image's ONBUILD steps run first: install packages.txt (apt) and requirements.txt (the Airflow
# environment) as root, then copy this project to /usr/local/airflow (= AIRFLOW_HOME, the working directory)
# as the user `astro`. requirements.txt cannot name the project itself: it is installed before the copy.
FROM astrocrpublic.azurecr.io/runtime:3.3-8-python-3.12

# WAP_DBT_EXECUTABLE: the dbt Cosmos renders and runs with (subprocess invocation), the venv's below.
# AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=1: a worker notices a finished task within 1 s, not 5 (see docs/write-speed.md).
ENV AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=1 \
    DO_NOT_TRACK=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    WAP_DBT_PROJECT_DIR=/usr/local/airflow/dbt \
    WAP_DBT_EXECUTABLE=/usr/local/airflow/dbt_venv/bin/dbt

# dbt in its own virtual environment, as Cosmos recommends: dbt's dependencies conflict with Airflow's.
RUN python -m venv /usr/local/airflow/dbt_venv \
    && /usr/local/airflow/dbt_venv/bin/pip install --no-cache-dir -r /usr/local/airflow/requirements-dbt.txt

# The `wap` package (include/wap: triggers, review UI, CLI) into Airflow's Python, editable: the code stays in
# include/, which `astro dev start` mounts from your checkout, and the package finds the project (dbt/) from there.
USER root
RUN pip install --no-cache-dir --no-deps -e /usr/local/airflow
USER astro

# The dbt project ready to render, made by the venv's dbt (`wap dbt prepare`): the bundle's profile (the project's
# own profiles.yml is not read), `dbt deps` when the project declares packages, and the manifest Cosmos renders
# the DAG from. `dbt parse` opens no connection; the duckdb profile only needs a path.
RUN WAP_DUCKDB_PATH=/tmp/dbt-parse/warehouse.duckdb wap dbt prepare && rm -rf /tmp/dbt-parse
