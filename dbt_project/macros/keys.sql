{#- Matching keys computed in the warehouse, one definition per engine (the Python ingestion has the
    same rules in fincdp.pii.name_key / company_key). -#}

{% macro name_key(col) %}{{ return(adapter.dispatch('name_key')(col)) }}{% endmacro %}

{% macro default__name_key(col) -%}
    lower(regexp_replace(translate({{ col }}, '・•．‧∙', '·····'), '\s+', '', 'g'))
{%- endmacro %}

{#- MySQL/MariaDB: regexp_replace returns LONGTEXT, which MariaDB can neither index nor hash in a join
    (a join on it compares every pair: dwm_enterprise_contacts took 45 s at 100k contacts), so the keys are
    cast to VARCHAR(255), the width publishing gives ODS strings; names are far shorter. -#}
{% macro mysql__name_key(col) -%}
    cast(lower(regexp_replace(replace(replace(replace({{ col }}, '・', '·'), '•', '·'), '．', '·'), '[[:space:]]+', ''))
         as char(255) character set utf8mb4)
{%- endmacro %}

{% macro clickhouse__name_key(col) -%}
    lower(replaceRegexpAll(replaceRegexpAll({{ col }}, '[・•．‧∙]', '·'), '\\s+', ''))
{%- endmacro %}


{% macro company_key(col) %}{{ return(adapter.dispatch('company_key')(col)) }}{% endmacro %}

{% macro default__company_key(col) -%}
    regexp_replace(regexp_replace(translate({{ col }}, '（）', '()'), '\s+', '', 'g'),
                   '(股份有限公司|有限责任公司|有限公司|集团)$', '')
{%- endmacro %}

{% macro mysql__company_key(col) -%}
    cast(regexp_replace(regexp_replace(replace(replace({{ col }}, '（', '('), '）', ')'), '[[:space:]]+', ''),
                        '(股份有限公司|有限责任公司|有限公司|集团)$', '')
         as char(255) character set utf8mb4)
{%- endmacro %}

{% macro clickhouse__company_key(col) -%}
    replaceRegexpOne(replaceRegexpAll(replaceAll(replaceAll({{ col }}, '（', '('), '）', ')'), '\\s+', ''),
                     '(股份有限公司|有限责任公司|有限公司|集团)$', '')
{%- endmacro %}


{#- dbt's cross-database split_part has no MySQL version; MySQL has no split_part function. -#}
{% macro mysql__split_part(string_text, delimiter_text, part_number) -%}
    substring_index(substring_index({{ string_text }}, {{ delimiter_text }}, {{ part_number }}), {{ delimiter_text }}, -1)
{%- endmacro %}
