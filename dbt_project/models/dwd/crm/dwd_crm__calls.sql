-- Calls are interactions, not entities: each business date adds its own calls (incremental).
{{ config(materialized='incremental', unique_key='business_date', incremental_strategy='delete+insert',
          mysql_indexes=[['contact_id', 'business_date']]) }}

with calls as (
    {{ latest_version(source('ods', 'crm_calls'), 'updated_at') }}
),

final as (
    select
        _source_id as call_id,
        contact_id,
        agent_userid,
        direction,
        phone_token,
        started_at,
        duration_s,
        outcome,
        outcome = 'connected' as is_connected,
        cast('{{ var("business_date") }}' as date) as business_date
    from calls
    where _business_date = cast('{{ var("business_date") }}' as date)
)

select * from final
