{{ config(mysql_indexes=[['lead_id'], ['contact_id']]) }}
with versions as (
    {{ latest_version(source('ods', 'crm_leads'), 'updated_at') }}
),

final as (
    select
        _source_id as lead_id,
        contact_id,
        enterprise_id,
        channel,
        status as lead_status,
        owner_userid,
        created_at,
        updated_at
    from versions
    where not coalesce(deleted, false)
)

select * from final
