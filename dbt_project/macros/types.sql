{#- The type metric values are cast to: MySQL casts only to DECIMAL, not NUMERIC; ClickHouse types
    are not nullable unless said so, and a metric over no rows is NULL. -#}
{% macro metric_number() %}{{ return(adapter.dispatch('metric_number')()) }}{% endmacro %}
{% macro default__metric_number() %}{{ dbt.type_numeric() }}{% endmacro %}
{% macro mysql__metric_number() %}decimal(38, 6){% endmacro %}
{% macro clickhouse__metric_number() %}Nullable({{ dbt.type_numeric() }}){% endmacro %}

{#- A typed NULL string, for a column a branch of a union does not have. MySQL casts only to CHAR;
    ClickHouse types are not nullable unless said so. -#}
{% macro null_string() %}{{ return(adapter.dispatch('null_string')()) }}{% endmacro %}
{% macro default__null_string() %}cast(null as {{ dbt.type_string() }}){% endmacro %}
{% macro mysql__null_string() %}cast(null as char){% endmacro %}
{% macro clickhouse__null_string() %}cast(null as Nullable(String)){% endmacro %}

{#- A timestamp of any source type (with or without zone, nullable), for comparing across sources. -#}
{% macro as_timestamp(expression) %}{{ return(adapter.dispatch('as_timestamp')(expression)) }}{% endmacro %}
{% macro default__as_timestamp(expression) %}cast({{ expression }} as {{ dbt.type_timestamp() }}){% endmacro %}
{% macro mysql__as_timestamp(expression) %}cast({{ expression }} as datetime(6)){% endmacro %}
{% macro clickhouse__as_timestamp(expression) %}cast({{ expression }} as Nullable(DateTime64(6, 'UTC'))){% endmacro %}

{#- Text of any length, where a MySQL column should stay TEXT. MariaDB deduplicates rows (DISTINCT) whose
    key is too long for a B-tree by a hash of the row instead of an on-disk index: for dwd_identifiers'
    1.5M rows at 100k contacts 32-45 s against 64 s once its identifier column had become VARCHAR(255)
    (the name keys are VARCHAR so that joins can use them). Nothing joins on such a column in SQL. -#}
{% macro long_text(expression) %}{{ return(adapter.dispatch('long_text')(expression)) }}{% endmacro %}
{% macro default__long_text(expression) %}{{ expression }}{% endmacro %}
{% macro mysql__long_text(expression) %}cast({{ expression }} as char(16384) character set utf8mb4){% endmacro %}
