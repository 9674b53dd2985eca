{#- The type metric values are cast to: MySQL casts only to DECIMAL, not NUMERIC; ClickHouse types
    are not nullable unless said so, and a metric over no rows is NULL. -#}
{% macro metric_number() %}{{ return(adapter.dispatch('metric_number')()) }}{% endmacro %}
{% macro default__metric_number() %}{{ dbt.type_numeric() }}{% endmacro %}
{% macro mysql__metric_number() %}decimal(38, 6){% endmacro %}
{% macro clickhouse__metric_number() %}Nullable({{ dbt.type_numeric() }}){% endmacro %}
