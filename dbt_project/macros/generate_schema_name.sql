{#- Each tenant's models go to that tenant's schemas: on DuckDB the layer name inside the tenant's
    own file, on MySQL/ClickHouse `<prefix>_<layer>` databases. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ var('schema_prefix', '') }}{{ custom_schema_name | trim if custom_schema_name else 'main' }}
{%- endmacro %}
