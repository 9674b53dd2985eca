{{ config(mysql_indexes=[['opportunity_id'], ['lead_id'], ['enterprise_id']]) }}
with versions as (
    {{ latest_version(source('ods', 'crm_opportunities'), 'updated_at') }}
),

final as (
    select
        _source_id as opportunity_id,
        lead_id,
        enterprise_id,
        name as opportunity_name,
        stage,
        stage in ('won', 'lost') as is_closed,
        stage = 'won' as is_won,
        amount,
        currency,
        close_date,
        owner_userid,
        created_at,
        updated_at
    from versions
    where not coalesce(deleted, false)
)

select * from final
