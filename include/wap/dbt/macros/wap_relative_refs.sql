{#-
    The WAP bundle's `ref`, added to the project's macros in the bundle's prepared copy (never to the project).

    A view reads its neighbours in its own schema by their bare names, so that after the write schema is swapped
    with production it reads production, not the schema it was built in (Snowflake, and DuckDB since 1.2, resolve
    an unqualified name in a view in the view's own schema). Everything else keeps dbt's fully qualified names:
    tables, incremental models, snapshots and tests resolve their refs when they are built, and a relation outside
    the view's schema (another schema, another database, a source) must stay qualified.
-#}
{% macro ref() %}
    {%- set relation = builtins.ref(*varargs, **kwargs) -%}
    {%- if model is defined and model is mapping
          and model.get('resource_type') == 'model'
          and (model.get('config') or {}).get('materialized') == 'view'
          and relation.schema is not none
          and relation.schema | lower == model.get('schema', '') | lower
          and (relation.database or '') | lower == (model.get('database') or '') | lower -%}
        {{ return(relation.include(database=false, schema=false)) }}
    {%- endif -%}
    {{ return(relation) }}
{% endmacro %}
