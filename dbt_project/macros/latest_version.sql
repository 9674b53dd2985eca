{#- The newest version of each record up to the run's business date: ODS keeps every version that
    arrived, one partition per day. Ties on the version column go to the later ingestion. -#}
{% macro latest_version(relation, version_column) -%}
    select *
    from (
        select
            *,
            row_number() over (
                partition by _source_id
                order by case when {{ version_column }} is null then 1 else 0 end, {{ version_column }} desc,
                         _ingested_at desc
            ) as _version_rank
        from {{ relation }}
        where _business_date <= cast('{{ var("business_date") }}' as date)
    ) as versions
    where _version_rank = 1
{%- endmacro %}


{#- Snapshot sources (WeCom org, tags) hold the whole picture of one day: read the newest snapshot
    up to the run's business date, so members who left are gone rather than stuck at an old day. -#}
{% macro latest_snapshot(relation) -%}
    select *
    from {{ relation }}
    where _business_date = (
        select max(_business_date) from {{ relation }}
        where _business_date <= cast('{{ var("business_date") }}' as date)
    )
{%- endmacro %}
