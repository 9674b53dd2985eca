{#- dbt-mysql 1.7's delete+insert deletes `where key in (select key from <new rows>)`: MariaDB runs
    that subquery for every row of the target (no semi-join for a single-table DELETE before 11.1), so a
    day of 20,000 events against 200,000 stored ones never finished. The same delete as a join against
    the distinct keys, read once. The root project's macro takes the adapter's place (only dbt-mysql
    has a macro of this name). -#}
{% macro incremental_delete(tmp_relation, target_relation, unique_key=none, statement_name="pre_main") %}
    {%- if unique_key is not none and unique_key | length -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    delete {{ target_relation }}
    from {{ target_relation }}
    inner join (select distinct {{ keys | join(', ') }} from {{ tmp_relation }}) as dbt_new_keys
        on {% for key in keys %}{{ target_relation }}.{{ key }} = dbt_new_keys.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
    {%- endif %}
{%- endmacro %}
