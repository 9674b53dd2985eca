{#- The date `days` days before a YYYY-MM-DD literal. -#}
{% macro days_before(date_literal, days) %}{{ return(adapter.dispatch('days_before')(date_literal, days)) }}{% endmacro %}

{% macro default__days_before(date_literal, days) -%}
    (cast('{{ date_literal }}' as date) - interval {{ days }} day)
{%- endmacro %}

{% macro mysql__days_before(date_literal, days) -%}
    date_sub(cast('{{ date_literal }}' as date), interval {{ days }} day)
{%- endmacro %}

{% macro clickhouse__days_before(date_literal, days) -%}
    (toDate('{{ date_literal }}') - {{ days }})
{%- endmacro %}
