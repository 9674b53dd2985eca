{#- One row per element of a list column (WeCom remark mobiles, department ids). -#}
{% macro unnest_list(relation_sql, list_col, element_alias, other_cols) %}
    {{ return(adapter.dispatch('unnest_list')(relation_sql, list_col, element_alias, other_cols)) }}
{% endmacro %}

{% macro default__unnest_list(relation_sql, list_col, element_alias, other_cols) -%}
    select {{ other_cols | join(', ') }}, unnest({{ list_col }}) as {{ element_alias }}
    from ({{ relation_sql }}) as listed
{%- endmacro %}

{% macro clickhouse__unnest_list(relation_sql, list_col, element_alias, other_cols) -%}
    select {{ other_cols | join(', ') }}, arrayJoin({{ list_col }}) as {{ element_alias }}
    from ({{ relation_sql }}) as listed
{%- endmacro %}

{% macro mysql__unnest_list(relation_sql, list_col, element_alias, other_cols) -%}
    select {% for c in other_cols %}listed.{{ c }}, {% endfor %}elements.value as {{ element_alias }}
    from ({{ relation_sql }}) as listed,
        json_table(listed.{{ list_col }}, '$[*]' columns (value varchar(255) path '$')) as elements
{%- endmacro %}
