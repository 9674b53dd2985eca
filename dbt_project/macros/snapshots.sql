{#- How a snapshot records a key that left its source: DuckDB (dbt 1.11) writes a deletion row
    (hard_deletes='new_record'); dbt-clickhouse 1.10 implements only 'invalidate' (closes the current
    row; ClickHouse/dbt-clickhouse#562); dbt 1.7, which runs MySQL, has only the older
    invalidate_hard_deletes flag. On every engine a delete closes the row and a restore opens a new one. -#}
{% macro snapshot_deletes() %}{{ return(adapter.dispatch('snapshot_deletes')()) }}{% endmacro %}
{% macro default__snapshot_deletes() %}{{ return({'hard_deletes': 'new_record'}) }}{% endmacro %}
{% macro clickhouse__snapshot_deletes() %}{{ return({'hard_deletes': 'invalidate'}) }}{% endmacro %}
{% macro mysql__snapshot_deletes() %}{{ return({'invalidate_hard_deletes': true}) }}{% endmacro %}

{#- dbt-mysql 1.7's snapshot update closes rows for 'update' changes only, so the staging table's
    'delete' rows (from invalidate_hard_deletes) were dropped and a deleted key stayed current. Same
    statement, both change types; the root project's macro takes the adapter's place. -#}
{% macro mysql__snapshot_merge_sql_update(target, source, insert_cols) -%}
    update {{ target }}, (select dbt_scd_id, dbt_change_type, dbt_valid_to from {{ source }}) as DBT_INTERNAL_SOURCE
    set {{ target }}.dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to
    where DBT_INTERNAL_SOURCE.dbt_scd_id = {{ target }}.dbt_scd_id
    and DBT_INTERNAL_SOURCE.dbt_change_type in ('update', 'delete')
    and {{ target }}.dbt_valid_to is null
{%- endmacro %}
