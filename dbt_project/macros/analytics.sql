{#- Analytics helpers (models/ads/ads_lead_funnel). -#}

{#- Days (fractional, as a double) from one timestamp to another; NULL if either is NULL. MySQL
    divides decimals to 4 places, so the 1e0 makes it a double there too. -#}
{% macro days_between(start_ts, end_ts) %}{{ return(adapter.dispatch('days_between')(start_ts, end_ts)) }}{% endmacro %}

{% macro default__days_between(start_ts, end_ts) -%}
    (date_diff('second', {{ as_timestamp(start_ts) }}, {{ as_timestamp(end_ts) }}) * 1e0 / 86400)
{%- endmacro %}

{% macro mysql__days_between(start_ts, end_ts) -%}
    (timestampdiff(second, {{ as_timestamp(start_ts) }}, {{ as_timestamp(end_ts) }}) * 1e0 / 86400)
{%- endmacro %}

{% macro clickhouse__days_between(start_ts, end_ts) -%}
    (dateDiff('second', {{ as_timestamp(start_ts) }}, {{ as_timestamp(end_ts) }}) * 1e0 / 86400)
{%- endmacro %}

{#- 'YYYY-MM' of a timestamp (UTC): the funnel's period. -#}
{% macro year_month(ts) %}{{ return(adapter.dispatch('year_month')(ts)) }}{% endmacro %}

{% macro default__year_month(ts) -%}
    strftime({{ as_timestamp(ts) }}, '%Y-%m')
{%- endmacro %}

{% macro mysql__year_month(ts) -%}
    date_format({{ as_timestamp(ts) }}, '%Y-%m')
{%- endmacro %}

{% macro clickhouse__year_month(ts) -%}
    formatDateTime({{ as_timestamp(ts) }}, '%Y-%m')
{%- endmacro %}

{#- Exact median of `value` per group, portable: the middle row (odd n) or the mean of the two middle
    rows (even n) by row_number; ClickHouse's median() is approximate and MySQL has none. -#}
{% macro median_by(relation_sql, value, group_cols, alias) -%}
    select {{ group_cols | join(', ') }}, avg(value) as {{ alias }}
    from (
        select {{ group_cols | join(', ') }}, {{ value }} as value,
            row_number() over (partition by {{ group_cols | join(', ') }} order by {{ value }}) as rn,
            count(*) over (partition by {{ group_cols | join(', ') }}) as n
        from ({{ relation_sql }}) as source_rows
        where {{ value }} is not null
    ) as ranked
    where 2 * rn between n and n + 2
    group by {{ group_cols | join(', ') }}
{%- endmacro %}
