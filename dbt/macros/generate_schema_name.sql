{#
    Every model is built into the WAP write schema, so that one schema swap publishes all of it.
    The pipeline passes the configured schema as the var `wap_write_schema`; without it the target's
    schema is used. A custom `schema` config on a model is refused: it would build outside the swapped
    schema. Tests keep their own schema (stored failures must not be published with the models).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set write_schema = var('wap_write_schema', none) or target.schema -%}
    {%- if node.resource_type == 'test' and custom_schema_name is not none -%}
        {{ custom_schema_name | trim }}
    {%- elif custom_schema_name is not none -%}
        {{ exceptions.raise_compiler_error(
            node.resource_type ~ " " ~ node.name ~ " sets schema '" ~ custom_schema_name ~ "', but every model "
            ~ "must be built into the WAP write schema '" ~ write_schema ~ "'; remove the schema config.") }}
    {%- else -%}
        {{ write_schema | trim }}
    {%- endif -%}
{%- endmacro %}
