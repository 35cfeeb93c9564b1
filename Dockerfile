# Astro Runtime 3.3 (Apache Airflow 3.3.x). Its ONBUILD steps install requirements.txt and copy this project to
# /usr/local/airflow (= AIRFLOW_HOME). Keep the tag on the Airflow 3.3 line of requirements-dev.txt.
FROM astrocrpublic.azurecr.io/runtime:3.3-2

ENV AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    DO_NOT_TRACK=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False

# The `wap` package (include/wap) and its CLI, then the dbt manifest Cosmos renders the DAG from.
RUN pip install --no-cache-dir --no-deps -e /usr/local/airflow \
    && WAP_DUCKDB_PATH=/tmp/dbt-parse.duckdb dbt parse --project-dir /usr/local/airflow/dbt \
        --profiles-dir /usr/local/airflow/dbt --target duckdb \
    && rm -f /tmp/dbt-parse.duckdb
